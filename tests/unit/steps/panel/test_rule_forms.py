"""Правила as forms, through the real panel handler: each section's fields named by their config
path, the draft checked as `leadflow config check` checks a file, each problem in Russian next to
its field, and a save that keeps the owner's comments and writes a version that says what changed."""

from __future__ import annotations

import html
import re

import yaml

from leadflow import wiring
from tests.unit.steps.panel.test_panel import CONFIG, call, csrf_of, login, stored

COMMENTED = CONFIG.replace("staff:\n", "staff:  # кто работает\n", 1).replace(
    "routing:\n", "# Правила читаются сверху вниз.\nrouting:\n", 1
)


def _form(page: dict) -> dict[str, str]:
    """What a browser would post from the page's section form, untouched."""
    body = page["body"]
    form = {"csrf": csrf_of(page), "version": re.search(r'name="version" value="(\d+)"', body).group(1)}
    for name, value in re.findall(r'<input name="([^"]+)" value="([^"]*)"', body):
        form[html.unescape(name)] = html.unescape(value)
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" value="on" checked>', body):
        form[html.unescape(name)] = "on"
    for name, options in re.findall(r'<select name="([^"]+)">(.*?)</select>', body, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', options)
        form[html.unescape(name)] = html.unescape(chosen.group(1)) if chosen else ""
    for name, value in re.findall(r'<textarea name="([^"]+)" rows="2">(.*?)</textarea>', body, re.S):
        form[html.unescape(name)] = html.unescape(value)
    return form


def _errors(body: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, text in re.findall(
        r'<small class="field-error" data-field="([^"]+)">(.*?)</small>', body, re.S
    ):
        found.setdefault(html.unescape(name), []).append(html.unescape(text))
    return found


def _open(aws, section: str, who: str = "vera") -> tuple[str, dict]:
    cookie = login(aws, who)
    page = call("GET", f"/panel/rules/section/{section}", cookie=cookie)
    assert page["statusCode"] == 200, page["body"]
    return cookie, _form(page)


def test_a_staff_field_error_is_shown_in_russian_next_to_the_field_and_nothing_is_saved(panel_aws):
    cookie, form = _open(panel_aws, "staff")
    assert form["staff.1.name"] == "Анна" and form["staff.1.capacity"] == "15"
    before = panel_aws.store.config.versions()
    form.update({"staff.1.capacity": "много", "action": "save"})
    answer = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)
    assert answer["statusCode"] == 400
    assert _errors(answer["body"]) == {"staff.1.capacity": ["нужно целое число"]}
    assert 'name="staff.1.capacity" value="много"' in answer["body"]  # what was typed stays in the form
    form.update({"staff.1.capacity": "15", "staff.1.skills": "nails, fase"})
    answer = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)
    assert _errors(answer["body"]) == {
        "staff.1.skills": ["нет такой услуги или группы 'fase' (может быть, 'face'?)"]
    }
    assert panel_aws.store.config.versions() == before


def test_saving_a_section_keeps_the_comments_and_the_version_says_what_changed(panel_aws):
    panel_aws.push_config(COMMENTED)
    wiring.reset()
    cookie, form = _open(panel_aws, "staff")
    form.update({"staff.1.capacity": "10", "action": "save"})
    del form["staff.2.active"]  # Катя unticked: she no longer works here
    answer = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)
    assert (
        answer["statusCode"] == 303
        and answer["headers"]["Location"] == "/panel/rules/section/staff?done=saved"
    )
    text = panel_aws.store.config.yaml_text()
    changed = [(a, b) for a, b in zip(COMMENTED.splitlines(), text.splitlines(), strict=True) if a != b]
    assert [b for _, b in changed] == [
        "  - {id: anna, name: Анна, role: specialist, skills: [nails, face], branch: center, capacity: 10}",
        "  - {id: katya, name: Катя, role: specialist, skills: [nails, face, body], branch: center, capacity: 15, active: false}",
    ]
    assert "staff:  # кто работает" in text and "# Правила читаются сверху вниз." in text
    latest = panel_aws.store.config.versions()[0]
    assert latest["who"] == "panel:vera"
    assert latest["summary"] == [
        "Сотрудники: «anna» capacity: 15 → 10",
        "Сотрудники: «katya» active: — → нет",
    ]
    rules = call("GET", "/panel/rules", cookie=cookie)["body"]
    assert "«anna» capacity: 15 → 10" in html.unescape(rules)
    assert "Вера (панель)" in rules and "panel:vera" not in rules  # who saved it, by name


def test_a_new_member_without_an_id_is_asked_for_one_then_added(panel_aws):
    cookie, form = _open(panel_aws, "staff")
    n = sum(1 for name in form if name.endswith(".name")) - 1  # the blank row's index
    form.update({f"staff.{n}.name": "Дарья", f"staff.{n}.skills": "hair", f"staff.{n}.branch": "center",
                 "action": "save"})  # fmt: skip
    answer = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)
    assert answer["statusCode"] == 400 and _errors(answer["body"]) == {f"staff.{n}.id": ["обязательное поле"]}
    again = _form(answer)  # the refused draft, as the page shows it
    again.update({f"staff.{n}.id": "darya", "action": "save"})
    assert call("POST", "/panel/rules/section/staff", form=again, cookie=cookie)["statusCode"] == 303
    wiring.reset()
    darya = wiring.business().staff_member("darya")
    assert (
        darya is not None and darya.name == "Дарья" and darya.skills == ["hair"] and darya.branch == "center"
    )


def test_a_routing_rule_is_added_checked_and_deleted_by_its_form(panel_aws):
    cookie, form = _open(panel_aws, "routing")
    assert form["routing.0.name"] == "vip" and form["routing.0.match.vip"] == "yes"
    form.update({"routing.3.name": "ночь", "routing.3.match.channel": "telegramm", "routing.3.assign_to": "elena",
                 "routing.2.delete": "on", "action": "save"})  # fmt: skip
    answer = call("POST", "/panel/rules/section/routing", form=form, cookie=cookie)
    assert answer["statusCode"] == 400
    (message,) = _errors(answer["body"])[
        "routing.2.match.channel"
    ]  # «instagram-promo» is gone: the new one is 3rd
    assert message.startswith("неизвестное значение 'telegramm' (может быть, 'telegram'?)")
    again = _form(answer)
    again.update({"routing.2.match.channel": "telegram", "action": "save"})
    assert call("POST", "/panel/rules/section/routing", form=again, cookie=cookie)["statusCode"] == 303
    wiring.reset()
    rules = wiring.business().routing
    assert [r.name for r in rules] == ["vip", "questions", "ночь"]
    assert rules[2].match.channel == ["telegram"] and rules[2].assign_to == ["elena"]


def test_hours_sla_and_texts_are_checked_at_their_fields(panel_aws):
    cookie, form = _open(panel_aws, "branches")
    form.update({"branches.1.hours.mon": "9-21", "action": "save"})  # branches: north, center
    errors = _errors(call("POST", "/panel/rules/section/branches", form=form, cookie=cookie)["body"])
    assert errors["branches.1.hours.mon"][0].startswith("время нужно в виде ЧЧ:ММ")
    cookie, form = _open(panel_aws, "messages")
    form.update({"messages.greeting": "Привет, {имя}!", "action": "save"})
    answer = call("POST", "/panel/rules/section/messages", form=form, cookie=cookie)
    errors = _errors(answer["body"])
    assert errors["messages.greeting"] == [
        "greeting: неизвестная подстановка {имя}; в этом тексте можно {name_part}"
    ]
    cookie, form = _open(panel_aws, "sla")
    form.update({"sla.hot_min": "10", "action": "save"})
    assert call("POST", "/panel/rules/section/sla", form=form, cookie=cookie)["statusCode"] == 303
    assert yaml.safe_load(panel_aws.store.config.yaml_text())["sla"]["hot_min"] == 10


def test_what_if_from_a_section_form_shows_the_change_and_saves_nothing(panel_aws):
    for i in range(4):
        stored(panel_aws, f"M{i}", owner="anna", status="assigned", service="manicure", branch="center")
    cookie, form = _open(panel_aws, "staff")
    before = panel_aws.store.config.yaml_text()
    del form["staff.2.active"]  # without Katya
    form.update({"action": "whatif", "days": "7"})
    body = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)["body"]
    assert re.search(r'id="replay-changed">2<', body) and re.search(r'id="replay-breach">0<', body)
    assert 'name="staff.2.active" value="on" checked' not in body  # the draft stays in the form
    assert panel_aws.store.config.yaml_text() == before


def test_a_form_opened_before_someone_else_saved_is_refused(panel_aws):
    cookie, form = _open(panel_aws, "sla")
    panel_aws.push_config(CONFIG.replace("hot_min: 15", "hot_min: 20"))
    form.update({"sla.warm_min": "30", "action": "save"})
    answer = call("POST", "/panel/rules/section/sla", form=form, cookie=cookie)
    assert answer["statusCode"] == 409 and "Откройте форму снова" in answer["body"]


def test_only_rule_editors_open_the_forms_and_every_post_needs_the_token(panel_aws):
    elena = login(panel_aws, "elena")
    assert call("GET", "/panel/rules/section/staff", cookie=elena)["statusCode"] == 403
    cookie, form = _open(panel_aws, "sla")
    del form["csrf"]
    assert call("POST", "/panel/rules/section/sla", form=form, cookie=cookie)["statusCode"] == 403
    assert call("GET", "/panel/rules/section/nope", cookie=cookie)["statusCode"] == 404


def test_what_was_typed_is_shown_as_text(panel_aws):
    cookie, form = _open(panel_aws, "staff")
    form.update(
        {"staff.1.name": '<script>alert(1)</script>"', "staff.1.capacity": "<b>x</b>", "action": "save"}
    )
    body = call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)["body"]
    assert "<script>alert(1)" not in body and "<b>x</b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in body


def test_config_checks_warnings_are_shown_at_their_fields_without_stopping_a_save(panel_aws):
    anna = "{id: anna, name: Анна, role: specialist, skills: [nails, face], branch: center, capacity: 15}"
    panel_aws.push_config(CONFIG.replace(anna, anna[:-1] + ', shifts: {mon: ["08:00-12:00"]}}'))
    wiring.reset()
    cookie = login(panel_aws, "vera")
    page = call("GET", "/panel/rules/section/staff", cookie=cookie)
    warnings = re.findall(
        r'<small class="field-warning" data-field="staff\.1\.shifts\.mon">(.*?)</small>', page["body"]
    )
    assert warnings == ["смена 08:00-12:00 вне часов работы"]  # the branch opens at 09:00
    form = _form(page)
    form.update({"staff.1.capacity": "14", "action": "save"})
    assert call("POST", "/panel/rules/section/staff", form=form, cookie=cookie)["statusCode"] == 303


def test_reminders_show_times_as_written_and_save_numbers_as_numbers(panel_aws):
    # Unquoted, YAML reads 21:00 as the number 1260: the form still shows 21:00.
    panel_aws.push_config(CONFIG + "reminders: {digest_at: 21:00, quiet_hours: {start: 22:00, end: 08:00}}\n")
    wiring.reset()
    cookie, form = _open(panel_aws, "reminders")
    assert form["reminders.digest_at"] == "21:00" and form["reminders.quiet_hours"] == "22:00-08:00"
    form.update({"reminders.before_appointment_h": "24, 3", "action": "save"})
    assert call("POST", "/panel/rules/section/reminders", form=form, cookie=cookie)["statusCode"] == 303
    wiring.reset()
    reminders = wiring.business().reminders
    assert reminders.before_appointment_h == [24, 3] and reminders.digest_at == "21:00"
    assert (
        "reminders: {digest_at: 21:00, quiet_hours: {start: 22:00, end: 08:00}, before_appointment_h: [24, 3]}"
        in (panel_aws.store.config.yaml_text())
    )
    cookie, form = _open(panel_aws, "reminders")
    form.update({"reminders.before_appointment_h": "24, завтра", "action": "save"})
    answer = call("POST", "/panel/rules/section/reminders", form=form, cookie=cookie)
    assert _errors(answer["body"]) == {"reminders.before_appointment_h": ["нужно целое число"]}


def test_a_rule_moved_up_by_its_order_field_is_checked_first(panel_aws):
    panel_aws.push_config(CONFIG.replace("routing:\n", "routing:\n  # VIP first\n", 1))
    wiring.reset()
    cookie, form = _open(panel_aws, "routing")
    assert [form[f"routing.{i}.position"] for i in range(3)] == ["1", "2", "3"]
    form.update({"routing.2.position": "1", "action": "save"})  # instagram-promo to the top
    assert call("POST", "/panel/rules/section/routing", form=form, cookie=cookie)["statusCode"] == 303
    wiring.reset()
    assert [r.name for r in wiring.business().routing] == ["instagram-promo", "vip", "questions"]
    assert "  # VIP first" in panel_aws.store.config.yaml_text()
    assert panel_aws.store.config.versions()[0]["summary"] == ["Правила: изменён порядок"]


def test_the_whole_file_form_refuses_a_save_over_someone_elses(panel_aws):
    cookie = login(panel_aws, "vera")
    page = call("GET", "/panel/rules", cookie=cookie)["body"]
    opened = re.search(r'name="version" value="(\d+)"', page).group(1)
    text = panel_aws.store.config.yaml_text()
    panel_aws.push_config(CONFIG.replace("hot_min: 15", "hot_min: 20"))  # someone else saved meanwhile
    form = {"csrf": re.search(r'name="csrf" value="([^"]+)"', page).group(1), "yaml": text.replace("capacity: 15}", "capacity: 14}", 1),
            "version": opened, "action": "save"}  # fmt: skip
    answer = call("POST", "/panel/rules", form=form, cookie=cookie)
    assert answer["statusCode"] == 409
    assert "hot_min: 20" in panel_aws.store.config.yaml_text()


def test_of_two_saves_at_one_moment_exactly_one_wins(panel_aws, monkeypatch):
    """Both read version N and pass the check; the other's write lands between this one's check
    and its write: this save is refused (409), the other's stays in force, no lost update."""
    cookie, form = _open(panel_aws, "sla")
    config = wiring.store().config
    text, base = config.current()
    panel_aws.push_config(CONFIG.replace("hot_min: 15", "hot_min: 20"))  # the other save
    monkeypatch.setattr(config, "current", lambda: (text, base))  # as this request read it, before
    form.update({"sla.warm_min": "30", "action": "save"})

    answer = call("POST", "/panel/rules/section/sla", form=form, cookie=cookie)

    assert answer["statusCode"] == 409 and "Откройте форму снова" in answer["body"]
    monkeypatch.undo()
    in_force = yaml.safe_load(config.current()[0])
    assert in_force["sla"]["hot_min"] == 20 and in_force["sla"].get("warm_min") != 30
    assert len(config.versions()) == base + 1  # the refused save is not listed
