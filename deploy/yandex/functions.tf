# One zip per function (`make yandex-package`): its app.py, the leadflow package and every
# dependency, boto3 included. Over 3.5 MB, so they go through Object Storage.

resource "yandex_storage_bucket" "code" {
  bucket = "${local.name}-code-${var.folder_id}"
}

resource "yandex_storage_object" "code" {
  for_each    = local.functions
  bucket      = yandex_storage_bucket.code.bucket
  key         = "${each.key}-${filesha256("${var.package_dir}/${each.key}.zip")}.zip"
  source      = "${var.package_dir}/${each.key}.zip"
  source_hash = filemd5("${var.package_dir}/${each.key}.zip")
}

resource "yandex_function" "fn" {
  for_each           = local.functions
  name               = "${local.name}-${each.key}"
  description        = "leadflow ${var.business}: ${each.key}"
  runtime            = "python312"
  entrypoint         = "app.handler"
  memory             = each.value.memory
  execution_timeout  = tostring(each.value.timeout)
  concurrency        = 1 # one request per instance, as on Lambda (the steps keep per-invocation state)
  service_account_id = yandex_iam_service_account.fn[each.key].id
  user_hash          = filesha256("${var.package_dir}/${each.key}.zip")

  package {
    bucket_name = yandex_storage_bucket.code.bucket
    object_name = yandex_storage_object.code[each.key].key
    sha_256     = filesha256("${var.package_dir}/${each.key}.zip")
  }

  environment = merge(
    local.environment,
    each.key == "score" ? { DLQ_URL = yandex_message_queue.dlq["score"].id } : {},
    each.key == "route" ? { DLQ_URL = yandex_message_queue.dlq["route"].id } : {},
  )

  secrets {
    id                   = yandex_lockbox_secret.keys[each.key].id
    version_id           = yandex_iam_service_account_static_access_key.fn[each.key].output_to_lockbox_version_id
    key                  = "AWS_ACCESS_KEY_ID"
    environment_variable = "AWS_ACCESS_KEY_ID"
  }
  secrets {
    id                   = yandex_lockbox_secret.keys[each.key].id
    version_id           = yandex_iam_service_account_static_access_key.fn[each.key].output_to_lockbox_version_id
    key                  = "AWS_SECRET_ACCESS_KEY"
    environment_variable = "AWS_SECRET_ACCESS_KEY"
  }
  dynamic "secrets" {
    for_each = local.function_secrets[each.key]
    content {
      id                   = yandex_lockbox_secret.secrets[each.key].id
      version_id           = yandex_lockbox_secret_version.secrets[each.key].id
      key                  = secrets.value
      environment_variable = secrets.value
    }
  }

  depends_on = [
    yandex_lockbox_secret_iam_binding.keys,
    yandex_lockbox_secret_iam_binding.secrets,
  ]
}
