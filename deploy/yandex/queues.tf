# template.yaml's ScoreQueue and RouteQueue, each with its dead-letter queue. The function puts a
# record it gave up on into the DLQ itself, with the reason; the redrive policy ends a message that
# keeps crashing the function (a crash or a timeout returns the whole batch to the queue).

resource "yandex_message_queue" "dlq" {
  for_each                  = local.queues
  name                      = "${local.name}-${each.key}-dlq"
  message_retention_seconds = 1209600
}

resource "yandex_message_queue" "queue" {
  for_each                   = local.queues
  name                       = "${local.name}-${each.key}"
  visibility_timeout_seconds = each.value.visibility_timeout
  message_retention_seconds  = 345600
  redrive_policy = jsonencode({
    deadLetterTargetArn = yandex_message_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
}
