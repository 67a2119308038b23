variable "business" {
  description = "The business's short name: part of every resource name (lowercase letters, digits, hyphens)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.business))
    error_message = "business: 2-31 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "cloud_id" {
  type = string
}

variable "folder_id" {
  type = string
}

variable "zone" {
  type    = string
  default = "ru-central1-a"
}

variable "deployer_access_key" {
  description = "Static access key of the deploying service account (Message Queue, Object Storage, Document API)."
  type        = string
  sensitive   = true
}

variable "deployer_secret_key" {
  type      = string
  sensitive = true
}

variable "package_dir" {
  description = "Where `make yandex-package` put the zips."
  type        = string
  default     = "../../build/yandex"
}

variable "max_receive_count" {
  description = "Attempts of one queue message before it is dead-lettered with its reason (template.yaml's MaxReceiveCount)."
  type        = number
  default     = 5
}

variable "secrets" {
  description = "The secrets (README's configuration section) by name; unset ones are left out. Stored in Lockbox, one secret per function holding only what it reads."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "settings" {
  description = "Plain settings (not secrets): SMS_PROVIDER, SMS_SENDER, WHATSAPP_PHONE_NUMBER_ID, VK_GROUP_ID, CALL_TIMEZONE, OPENAI_BASE_URL, OPENAI_MODEL, AMOCRM_BASE_URL, GOOGLE_SHEETS_API_BASE, GOOGLE_OAUTH_TOKEN_URL, TRANSCRIBE_BASE_URL, TRANSCRIBE_MODEL, CHATFUEL_BOT_ID, CHATFUEL_BLOCK, YCLIENTS_API_BASE, YOOKASSA_API_BASE, PAYMENT_WEBHOOK_IPS, PUBLIC_BASE_URL (the API gateway's address or your domain: the panel's login links and booking confirmations' calendar links start with it), TELEGRAM_BOT_USERNAME (the bot's username: staff invites as t.me links with a QR code)."
  type        = map(string)
  default     = {}
}
