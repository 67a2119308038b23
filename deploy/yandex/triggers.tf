resource "yandex_function_trigger" "queue" {
  for_each = local.queues
  name     = "${local.name}-${each.key}-queue"
  message_queue {
    queue_id           = yandex_message_queue.queue[each.key].arn
    service_account_id = yandex_iam_service_account.trigger.id
    batch_size         = tostring(each.value.batch_size)
    batch_cutoff       = tostring(each.value.batch_cutoff)
    visibility_timeout = tostring(each.value.visibility_timeout)
  }
  function {
    id                 = yandex_function.fn[each.value.function].id
    service_account_id = yandex_iam_service_account.trigger.id
  }
  depends_on = [yandex_resourcemanager_folder_iam_member.trigger_reads, yandex_function_iam_binding.invoker]
}

# The cron runs in UTC; escalate and remind read the leadflow clock, not the tick's time.
resource "yandex_function_trigger" "timer" {
  for_each = local.schedules
  name     = "${local.name}-${each.key}-timer"
  timer {
    cron_expression = each.value
    payload         = each.key
  }
  function {
    id                 = yandex_function.fn[each.key].id
    service_account_id = yandex_iam_service_account.trigger.id
  }
  depends_on = [yandex_function_iam_binding.invoker]
}
