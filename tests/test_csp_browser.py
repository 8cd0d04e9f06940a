"""Each kind of page works in Chromium under the Content-Security-Policy, with no violation.

A blocked script, style, image or websocket would be reported, by Chromium's console and by
a `securitypolicyviolation` event; both are collected for every page of the visit, from the
login to the admin, and the pages are used, not just loaded: the live counter must move,
the keyboard must label, the plots must be drawn in their colours.
"""

from conftest import demo_password
from playwright.sync_api import expect

from annotation.models import Study
from judging.models import Judge

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`securitypolicyviolation: ${e.violatedDirective} ${e.blockedURI}`));
"""


def watch(page, violations):
    def collect(message):
        if "Content Security Policy" in message.text or "securitypolicyviolation" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", collect)
    return page


def log_in(page, base, output, username):
    page.goto(base + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", demo_password(output, username))
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def test_every_page_kind_works_under_the_policy(demo_server, page):
    base, output = demo_server
    Study.objects.filter(slug="demo").update(items_per_annotator=1)
    judge = Judge.objects.create(name="stub", base_url="http://127.0.0.1:9/v1", model="m")
    violations = []
    admin = watch(page, violations)
    annotator = watch(page.context.browser.new_page(), violations)

    # The researcher: studies list, then the dashboard, whose counters follow the labels.
    log_in(admin, base, output, "demo-admin")
    admin.click("text=PandaLM demo")
    labels = admin.locator('[data-counter="human_labels"]')
    assert labels.inner_text() == "900"

    # An annotator labels one item by keyboard and lands on the done page.
    log_in(annotator, base, output, "demo-annotator-1")
    annotator.goto(base + "/s/demo/label/")
    annotator.keyboard.press("1")
    annotator.keyboard.press("Escape")
    with annotator.expect_navigation():
        annotator.keyboard.press("Enter")
    annotator.wait_for_url(base + "/s/demo/done/")
    assert annotator.locator("#completion-code").is_visible()

    expect(labels).to_have_text("901")  # pushed over the websocket

    # The report: its SVG plots keep their colours without inline CSS.
    admin.click("text=Calibration report")
    admin.wait_for_selector("h1:has-text('Calibration report')", timeout=60_000)
    assert admin.locator("figure svg").count() >= 4
    background = admin.locator("figure svg #patch_1 path").first
    assert background.evaluate("path => getComputedStyle(path).fill") == "rgb(255, 255, 255)"
    assert admin.locator("figure svg image").count() >= 1  # a confusion matrix, a data: PNG

    # The judge step: the estimate of a run before it starts.
    admin.goto(f"{base}/studies/demo/judge-runs/estimate/?judge=stub&questions=pref")
    assert admin.locator("dt:has-text('Requests') + dd").inner_text() == "300"

    # The API's browsable pages (DRF's own templates and scripts).
    admin.goto(base + "/api/studies/demo/items/")
    admin.wait_for_selector("text=PandaLM")
    admin.click("button.dropdown-toggle")
    admin.wait_for_selector(".dropdown-menu:visible")  # Bootstrap's script ran

    # Django's admin: its index, and a change form with its own scripts running.
    admin.goto(base + "/admin/")
    admin.wait_for_selector("#site-name")
    admin.goto(f"{base}/admin/judging/judge/{judge.pk}/change/")
    assert admin.locator("input[name=name]").input_value() == "stub"
    theme = "document.documentElement.dataset.theme"
    before = admin.evaluate(theme)
    admin.locator("button.theme-toggle").first.click()
    assert admin.evaluate(theme) != before  # admin/js/theme.js ran
    admin.fill("input[name=model]", "m2")
    admin.click("input[name=_continue]")
    admin.wait_for_selector(".messagelist .success")
    assert Judge.objects.get(pk=judge.pk).model == "m2"

    assert violations == [], "\n".join(violations)
