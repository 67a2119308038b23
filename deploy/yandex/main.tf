# The same functions as template.yaml (AWS), on Yandex Cloud. tests/unit/test_yandex_terraform.py
# parses this directory and checks it declares every function, trigger, queue with its DLQ and
# table (keys, indexes, TTL) that template.yaml does, each function reading only its secrets.

locals {
  name = "leadflow-${var.business}"

  # memory and timeout as template.yaml's; `queue`: the queue whose trigger invokes it;
  # `schedule`: its timer (cron, 6 fields, UTC); `sends`: it sends to queues (ymq.writer).
  functions = {
    ingest = {
      memory  = 256
      timeout = 10
      sends   = true
      secrets = ["TELEGRAM_WEBHOOK_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN", "VK_CONFIRMATION_CODE", "VK_SECRET", "FORM_SECRET", "CALL_SECRET", "BITRIX24_APP_TOKEN", "AMOCRM_WEBHOOK_SECRET", "YCLIENTS_WEBHOOK_SECRET", "SMS_WEBHOOK_SECRET", "SMS_API_KEY"]
    }
    score = {
      memory  = 512
      timeout = 30
      sends   = true # to route, to its DLQ, and its own retries
      secrets = ["TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "INSTAGRAM_TOKEN", "VK_TOKEN", "OPENAI_API_KEY", "TRANSCRIBE_API_KEY", "MANYCHAT_API_TOKEN", "CHATFUEL_API_TOKEN", "SMS_API_KEY", "SMS_LOGIN", "YCLIENTS_PARTNER_TOKEN", "YCLIENTS_USER_TOKEN"]
    }
    route = {
      memory  = 512
      timeout = 60
      sends   = true # to its DLQ, and its own retries
      secrets = ["TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "INSTAGRAM_TOKEN", "VK_TOKEN", "MANYCHAT_API_TOKEN", "CHATFUEL_API_TOKEN", "SMS_API_KEY", "SMS_LOGIN", "BITRIX24_WEBHOOK_URL", "AMOCRM_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON", "YCLIENTS_PARTNER_TOKEN", "YCLIENTS_USER_TOKEN", "YOOKASSA_SHOP_ID", "YOOKASSA_SECRET_KEY"]
    }
    escalate = {
      memory  = 512
      timeout = 50
      sends   = true # leads that waited long enough go to route
      secrets = ["TELEGRAM_BOT_TOKEN", "BITRIX24_WEBHOOK_URL", "AMOCRM_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON"]
    }
    remind = {
      memory  = 512
      timeout = 120
      sends   = false
      secrets = ["TELEGRAM_BOT_TOKEN", "WHATSAPP_TOKEN", "INSTAGRAM_TOKEN", "VK_TOKEN", "MANYCHAT_API_TOKEN", "CHATFUEL_API_TOKEN", "SMS_API_KEY", "SMS_LOGIN", "BITRIX24_WEBHOOK_URL", "AMOCRM_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON"]
    }
    panel = {
      memory  = 512
      timeout = 15
      sends   = true # «Повторить»: a dead letter back to its queue
      secrets = ["TELEGRAM_BOT_TOKEN", "BITRIX24_WEBHOOK_URL", "AMOCRM_TOKEN", "GOOGLE_SERVICE_ACCOUNT_JSON"]
    }
  }

  # Message Queue triggers. No partial batch failure on Yandex Cloud: the function sends a failed
  # record back itself (adapters/platform/yandex.py). Score takes one message per call, so its
  # first reply never waits for a batch; route takes up to 10 (one Bitrix24 batch).
  queues = {
    score = { function = "score", batch_size = 1, batch_cutoff = 1, visibility_timeout = 180 } # 6 x its timeout
    route = { function = "route", batch_size = 10, batch_cutoff = 2, visibility_timeout = 360 }
  }

  # Timer triggers: template.yaml's rate(1 minute) and rate(5 minutes).
  schedules = {
    escalate = "* * ? * * *"
    remind   = "0/5 * ? * * *"
  }

  # Set secrets only: a function gets the ones it reads (the names are not secret).
  secret_names = nonsensitive(toset([for k, v in var.secrets : k if v != ""]))
  function_secrets = {
    for fn, spec in local.functions : fn => sort(tolist(setintersection(toset(spec.secrets), local.secret_names)))
  }

  tables = {
    LEADS_TABLE        = aws_dynamodb_table.leads.name
    CONTACTS_TABLE     = aws_dynamodb_table.contacts.name
    CONVERSATION_TABLE = aws_dynamodb_table.conversation.name
    STAFF_TABLE        = aws_dynamodb_table.staff.name
    TIMERS_TABLE       = aws_dynamodb_table.timers.name
    INBOX_TABLE        = aws_dynamodb_table.inbox.name
    CONFIG_TABLE       = aws_dynamodb_table.config.name
    RATE_LIMIT_TABLE   = aws_dynamodb_table.rate_limit.name
    BOOKINGS_TABLE     = aws_dynamodb_table.bookings.name
    STATS_TABLE        = aws_dynamodb_table.stats.name
  }

  environment = merge(
    {
      STAGE                           = var.business
      LEADFLOW_PLATFORM               = "yandex"
      LEADFLOW_MAX_RECEIVES           = tostring(var.max_receive_count)
      AWS_DEFAULT_REGION              = "ru-central1"
      AWS_ENDPOINT_URL_DYNAMODB       = yandex_ydb_database_serverless.db.document_api_endpoint
      AWS_ENDPOINT_URL_SQS            = "https://message-queue.api.cloud.yandex.net"
      SCORE_QUEUE_URL                 = yandex_message_queue.queue["score"].id # the id is the queue's URL
      ROUTE_QUEUE_URL                 = yandex_message_queue.queue["route"].id
      POWERTOOLS_SERVICE_NAME         = "leadflow"
      POWERTOOLS_METRICS_NAMESPACE    = "leadflow"
      POWERTOOLS_LOG_LEVEL            = "INFO"
      POWERTOOLS_LOGGER_LOG_EVENT     = "false"
      POWERTOOLS_TRACE_DISABLED       = "true" # no X-Ray here
    },
    local.tables,
    { for k, v in var.settings : k => v if v != "" },
  )
}

# ------------------------------------------------------------------ service accounts and roles
# One account per function: it runs the function, reads its own Lockbox secrets, and its static
# key signs the function's Document API and Message Queue calls (boto3, SigV4).
resource "yandex_iam_service_account" "fn" {
  for_each    = local.functions
  name        = "${local.name}-${each.key}"
  description = "leadflow ${var.business}: the ${each.key} function"
}

resource "yandex_iam_service_account_static_access_key" "fn" {
  for_each           = local.functions
  service_account_id = yandex_iam_service_account.fn[each.key].id
  description        = "boto3 in the ${each.key} function (Document API, Message Queue)"
  output_to_lockbox { # the secret key never lands in the Terraform state
    secret_id            = yandex_lockbox_secret.keys[each.key].id
    entry_for_access_key = "AWS_ACCESS_KEY_ID"
    entry_for_secret_key = "AWS_SECRET_ACCESS_KEY"
  }
}

# Reading and writing document tables: ydb.editor, on this database only (YDB has no per-table roles).
resource "yandex_ydb_database_iam_binding" "functions" {
  database_id = yandex_ydb_database_serverless.db.id
  role        = "ydb.editor"
  members     = [for fn in keys(local.functions) : "serviceAccount:${yandex_iam_service_account.fn[fn].id}"]
}

# Sending to queues: ymq.writer, which Message Queue grants on a folder only (keep one business per folder).
resource "yandex_resourcemanager_folder_iam_member" "sends" {
  for_each  = { for fn, spec in local.functions : fn => spec if spec.sends }
  folder_id = var.folder_id
  role      = "ymq.writer"
  member    = "serviceAccount:${yandex_iam_service_account.fn[each.key].id}"
}

# The triggers read the queues and invoke score, route, escalate and remind.
resource "yandex_iam_service_account" "trigger" {
  name        = "${local.name}-trigger"
  description = "leadflow ${var.business}: Message Queue and timer triggers"
}

resource "yandex_resourcemanager_folder_iam_member" "trigger_reads" {
  folder_id = var.folder_id
  role      = "ymq.reader"
  member    = "serviceAccount:${yandex_iam_service_account.trigger.id}"
}

# The API gateway invokes ingest, and nothing else.
resource "yandex_iam_service_account" "gateway" {
  name        = "${local.name}-gateway"
  description = "leadflow ${var.business}: API Gateway -> ingest"
}

resource "yandex_function_iam_binding" "invoker" {
  for_each    = local.functions
  function_id = yandex_function.fn[each.key].id
  role        = "serverless.functions.invoker"
  members = [
    contains(["ingest", "panel"], each.key)
    ? "serviceAccount:${yandex_iam_service_account.gateway.id}"
    : "serviceAccount:${yandex_iam_service_account.trigger.id}"
  ]
}
