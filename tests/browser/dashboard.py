"""The dashboard in a real browser (Playwright driving Debian's chromium).

Run by tests/it/dashboard.rs against a real wasp host with a simulated phone
waiting to be paired (session `phone`, its traffic to endpoint `demo`) and
an endpoint `crm` for session `shop`, both on wasp's own receiver:
    dashboard.py BASE_URL API_KEY SCREENSHOT_DIR DEAD_COUNT

The story a new user goes through: sign in, pair the phone from its QR code,
watch its traffic in the live tail, make `crm` fail and see DEAD_COUNT
messages become dead letters, fix it, resend one and see it delivered,
filter the list (the filter survives a reload), and send the rest again
after the confirmation with their count.
"""

import json
import re
import sys
import urllib.request

from playwright.sync_api import expect, sync_playwright

base, key, shots, dead = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def reload_until(page, done, tries=150):
    """Reload until `done(page)` holds: what a form starts happens after its answer."""
    for _ in range(tries):
        if done(page):
            return
        page.wait_for_timeout(100)
        page.reload()
    raise AssertionError(
        f"the page never showed the expected state: {page.url}\n{page.locator('main').inner_text()}")


def post_message(n):
    """A message of session `shop` (routed to `crm`), answered 202."""
    event = {"event": "message", "session": "shop", "payload": {
        "id": f"false_491111@c.us_UI{n}", "timestamp": 1700000000 + n,
        "from": "491111@c.us", "fromMe": False, "body": f"order {n}"}}
    request = urllib.request.Request(
        base + "/api/events", data=json.dumps(event).encode(), method="POST",
        headers={"Content-Type": "application/json", "X-Api-Key": key})
    assert urllib.request.urlopen(request).status == 202


def phone_status(page):
    return page.get_by_role("row", name=re.compile(r"^phone")).locator(".badge").first.inner_text()


with sync_playwright() as playwright:
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
    )
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    page.set_default_timeout(15000)

    # Signing in: a wrong key is refused, the right one leads back to the page asked for.
    page.goto(base + "/ui/sessions")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.fill("#api_key", "wrong")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("not the API key")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/ui/sessions$"))
    expect(page.locator("h1")).to_have_text("Sessions")

    # The phone waits with its QR code; scanning it (here: opening the
    # link it encodes) and confirming pairs the session.
    qr = page.get_by_role("img", name=re.compile("QR code to pair session phone"))
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") >= 256
    page.screenshot(path=f"{shots}/sessions.png", full_page=True)
    qr.click()
    expect(page.locator("h1")).to_have_text("Pair phone")
    page.get_by_role("button", name="Pair phone").click()
    expect(page.get_by_role("status")).to_contain_text("QR code scanned")
    reload_until(page, lambda p: phone_status(p) == "WORKING")
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_have_count(0)

    # Its traffic arrives in the live tail.
    page.goto(base + "/ui/tail?session=phone")
    expect(page.get_by_role("status")).to_contain_text("Live")
    expect(page.locator("#tail tr").first).to_contain_text("demo")
    page.screenshot(path=f"{shots}/tail.png", full_page=True)

    # Make crm fail: its messages are retried, then dead letters.
    page.goto(base + "/ui/endpoints")
    page.get_by_role("button", name="make it fail: crm").click()
    expect(page.get_by_role("status")).to_contain_text("crm's receiver answers 503 now")
    page.screenshot(path=f"{shots}/endpoints.png", full_page=True)
    for n in range(dead):
        post_message(n)
    page.goto(base + "/ui/dead")
    expect(page.locator("h1")).to_have_text("Dead letters")
    rows = page.locator("table").first.locator("tbody tr")
    reload_until(page, lambda p: rows.count() == dead)
    page.screenshot(path=f"{shots}/dead-letters.png", full_page=True)

    # Fix it.
    page.goto(base + "/ui/endpoints")
    page.get_by_role("button", name="fix it: crm").click()
    expect(page.get_by_role("status")).to_contain_text("crm's receiver answers 200 again")

    # Resend one dead delivery: it is delivered.
    page.goto(base + "/ui/dead")
    page.locator("table").first.locator("tbody tr a").first.click()
    expect(page.locator("h1")).to_have_text(re.compile(r"^Delivery \d+$"))
    page.get_by_role("button", name="Resend now").click()
    expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
    state = page.locator("main p .badge").first
    reload_until(page, lambda p: p.locator("main p .badge").first.inner_text() == "delivered")
    expect(state).to_have_text("delivered")
    expect(page.locator("main table").last).to_contain_text("delivered")
    page.screenshot(path=f"{shots}/delivery.png", full_page=True)

    # Filter the list; the filter is the URL and survives a reload.
    page.goto(base + "/ui/deliveries")
    page.select_option("select[name=state]", "dead")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"state=dead"))
    page.reload()
    expect(page.locator("select[name=state]")).to_have_value("dead")
    expect(page.locator("main table tbody tr")).to_have_count(dead - 1)

    # Send the rest again: the count first, then the action.
    page.get_by_role("link", name=re.compile("Send every delivery that matches again")).click()
    expect(page.locator("main")).to_contain_text(f"{dead - 1} deliveries match")
    page.get_by_role("button", name=f"Send {dead - 1} again").click()
    expect(page.get_by_role("status")).to_contain_text(f"{dead - 1} deliveries are queued")
    expect(page.locator("select[name=state]")).to_have_value("dead")
    reload_until(page, lambda p: p.get_by_text("No deliveries match.").count() == 1)

    page.goto(base + "/ui")
    expect(page.locator("h1")).to_have_text("Overview")
    page.screenshot(path=f"{shots}/overview.png", full_page=True)
    browser.close()

print("ok")
