# template.yaml's tables as YDB document tables (serverless only), through the Document API.
# Differences from AWS, documented by Yandex Cloud: on-demand billing only; a GSI projects ALL
# (by_crm_id is KEYS_ONLY on AWS); no point-in-time recovery (YDB keeps daily backups); TTL
# deletes "usually within two days" (the code checks expiry itself); no SSE setting.

resource "yandex_ydb_database_serverless" "db" {
  name                = local.name
  deletion_protection = true # a business's data survives a `terraform destroy`
}

resource "aws_dynamodb_table" "leads" {
  name         = "${var.business}/leads"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lead_id"
  attribute {
    name = "lead_id"
    type = "S"
  }
  attribute {
    name = "day"
    type = "S"
  }
  attribute {
    name = "received_at"
    type = "S"
  }
  attribute {
    name = "crm_id"
    type = "S"
  }
  attribute {
    name = "phone"
    type = "S"
  }
  attribute {
    name = "name_initial"
    type = "S"
  }
  attribute {
    name = "name_key"
    type = "S"
  }
  global_secondary_index {
    name            = "by_day"
    hash_key        = "day"
    range_key       = "received_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by_crm_id"
    hash_key        = "crm_id"
    projection_type = "ALL" # KEYS_ONLY on AWS; the Document API takes ALL only
  }
  global_secondary_index {
    name            = "by_phone"
    hash_key        = "phone"
    range_key       = "received_at"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "by_name"
    hash_key        = "name_initial"
    range_key       = "name_key"
    projection_type = "ALL"
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "contacts" {
  name         = "${var.business}/contacts"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "conversation" {
  name         = "${var.business}/conversation"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "lead_id"
  range_key    = "sk"
  attribute {
    name = "lead_id"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "staff" {
  name         = "${var.business}/staff"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "timers" {
  name         = "${var.business}/timers"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "timer_id"
  attribute {
    name = "timer_id"
    type = "S"
  }
  attribute {
    name = "queue"
    type = "S"
  }
  attribute {
    name = "due_at"
    type = "S"
  }
  global_secondary_index {
    name            = "due"
    hash_key        = "queue"
    range_key       = "due_at"
    projection_type = "ALL"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "inbox" {
  name         = "${var.business}/inbox"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "key"
  attribute {
    name = "key"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "config" {
  name         = "${var.business}/config"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "name"
  attribute {
    name = "name"
    type = "S"
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "bookings" {
  # the built-in calendar: one item per master and time cell a visit or a hold covers
  name         = "${var.business}/bookings"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "stats" {
  # lead facts by day for the panel (store/stats.py). On AWS the leads table's stream keeps them;
  # here no trigger feeds them yet (a YDB changefeed is not wired up), so the panel counts the
  # leads themselves on Yandex (wiring.panel_step) and this table stays empty: nothing would
  # keep facts written here in step with the leads (an erased client's name, say).
  name         = "${var.business}/stats"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"
  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_dynamodb_table" "rate_limit" {
  name         = "${var.business}/rate_limit"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  attribute {
    name = "pk"
    type = "S"
  }
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }
  lifecycle {
    prevent_destroy = true
  }
}
