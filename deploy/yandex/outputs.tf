output "webhook_base_url" {
  description = "Webhooks are https://<this>/webhooks/<channel>."
  value       = "https://${yandex_api_gateway.webhooks.domain}"
}

output "document_api_endpoint" {
  value = yandex_ydb_database_serverless.db.document_api_endpoint
}

output "queue_urls" {
  value = { for k, q in yandex_message_queue.queue : k => q.id }
}

output "dlq_urls" {
  value = { for k, q in yandex_message_queue.dlq : k => q.id }
}
