# template.yaml's HTTP API: /webhooks/{channel} (GET, POST) and Mango Office's
# /webhooks/call/events/{kind}, to ingest in payload format 1.0 (adapters/platform/yandex.py).
resource "yandex_api_gateway" "webhooks" {
  name = local.name
  spec = templatefile("${path.module}/api_gateway.yaml.tftpl", {
    title              = local.name
    function_id        = yandex_function.fn["ingest"].id
    service_account_id = yandex_iam_service_account.gateway.id
  })
  depends_on = [yandex_function_iam_binding.invoker]
}
