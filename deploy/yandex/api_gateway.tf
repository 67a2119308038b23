# template.yaml's HTTP API: /webhooks/{channel} (GET, POST) and Mango Office's
# /webhooks/call/events/{kind}, to ingest in payload format 1.0 (adapters/platform/yandex.py);
# /panel and /panel/{proxy+} to the panel (it answers payload 1.0 with multiValueHeaders cookies),
# and /ics/{token} (a booking's «добавить в календарь» file) to the panel too.
resource "yandex_api_gateway" "webhooks" {
  name = local.name
  spec = templatefile("${path.module}/api_gateway.yaml.tftpl", {
    title              = local.name
    function_id        = yandex_function.fn["ingest"].id
    panel_function_id  = yandex_function.fn["panel"].id
    service_account_id = yandex_iam_service_account.gateway.id
  })
  depends_on = [yandex_function_iam_binding.invoker]
}
