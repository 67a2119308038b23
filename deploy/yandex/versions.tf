# leadflow on Yandex Cloud: one `terraform apply` per business (see README "Deploying to Yandex Cloud").
terraform {
  required_version = ">= 1.5"
  required_providers {
    yandex = {
      source  = "yandex-cloud/yandex"
      version = ">= 0.130"
    }
    # YDB's document tables are created through the Document API with the aws provider's
    # aws_dynamodb_table, as Yandex Cloud documents (ydb/terraform/dynamodb-tables).
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

provider "yandex" {
  cloud_id  = var.cloud_id
  folder_id = var.folder_id
  zone      = var.zone
  # The deployer's static key: Message Queue and Object Storage take only static keys.
  ymq_access_key     = var.deployer_access_key
  ymq_secret_key     = var.deployer_secret_key
  storage_access_key = var.deployer_access_key
  storage_secret_key = var.deployer_secret_key
}

provider "aws" {
  region     = "ru-central1"
  access_key = var.deployer_access_key
  secret_key = var.deployer_secret_key
  endpoints {
    # Known after the database exists: the first apply targets it (see the guide).
    dynamodb = yandex_ydb_database_serverless.db.document_api_endpoint
  }
  # "Указанный набор параметров skip_ обязателен" (ydb/terraform/dynamodb-tables).
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
}
