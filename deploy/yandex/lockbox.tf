# Lockbox secrets become the functions' environment variables. Each function has its own two
# secrets: the static key of its service account, and the channel secrets it reads (if any set).

resource "yandex_lockbox_secret" "keys" {
  for_each = local.functions
  name     = "${local.name}-${each.key}-key"
}

resource "yandex_lockbox_secret" "secrets" {
  for_each = { for fn, names in local.function_secrets : fn => names if length(names) > 0 }
  name     = "${local.name}-${each.key}-secrets"
}

resource "yandex_lockbox_secret_version" "secrets" {
  for_each  = yandex_lockbox_secret.secrets
  secret_id = each.value.id
  dynamic "entries" {
    for_each = local.function_secrets[each.key]
    content {
      key        = entries.value
      text_value = var.secrets[entries.value] # in the state: keep the state private (see the guide)
    }
  }
}

resource "yandex_lockbox_secret_iam_binding" "keys" {
  for_each  = local.functions
  secret_id = yandex_lockbox_secret.keys[each.key].id
  role      = "lockbox.payloadViewer"
  members   = ["serviceAccount:${yandex_iam_service_account.fn[each.key].id}"]
}

resource "yandex_lockbox_secret_iam_binding" "secrets" {
  for_each  = yandex_lockbox_secret.secrets
  secret_id = each.value.id
  role      = "lockbox.payloadViewer"
  members   = ["serviceAccount:${yandex_iam_service_account.fn[each.key].id}"]
}
