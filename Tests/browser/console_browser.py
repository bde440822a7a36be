#!/usr/bin/env python3
"""Drives the node console in headless Chromium, as a person would, and checks what the pages show.

Usage: console_browser.py STEP BASE_URL [ARGS...]
  journal BASE KEN_ID TUN_ID   open the journal, filter by Member State, open the Kenyan recommendation
                               and the Tunisian one with its withheld part; the trace page's coverage
  coverage BASE PERCENT        reload the trace page until it shows PERCENT (bounded)
  compose OCT_BASE WG_BASE     at OCT, send the mission report form empty (errors next to the fields),
                               fill it in and publish it; then find it in the working group's journal
  matrix OCT_BASE CSV_FILE     at OCT, upload an activity matrix from a CSV file and publish it
  subscribe BASE               on the notifications page, add a subscription with a State that does
                               not exist (the error by its field, nothing added), then with KEN
  layout BASE PATH...          each page at 1280 px and at a 390 px phone: nothing wider than the window,
                               the viewport tag, a marking banner inside the header and footer landmarks
  axe BASE AXE_JS PATH...      axe-core (AXE_JS, axe.min.js) on each page: no critical, serious or
                               moderate violation
Screenshots go to $CTBUS_SCREENSHOTS when it is set. Exit status 0 when every check holds; otherwise
one line per failed check on stderr and status 1. Uses Debian's chromium, chromedriver and
python3-selenium only: it never downloads a browser or a driver.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_for_url(driver, part):
    """A click that navigates returns before the next page is there: wait (bounded) until it is."""
    try:
        WebDriverWait(driver, 30).until(lambda d: part in d.current_url and d.execute_script("return document.readyState") == "complete")
    except Exception:
        check(False, f"the browser reached a page whose address holds {part} (it is at {driver.current_url})")


def shot(driver, name):
    folder = os.environ.get("CTBUS_SCREENSHOTS")
    if folder:
        driver.save_screenshot(os.path.join(folder, name + ".png"))


def journal(driver, base, kenya, tunisia):
    driver.get(base + "/journal")
    check("Journal" in driver.title, "the journal page has its title")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.journal tbody tr")
    check(len(rows) >= 3, f"the journal lists the messages (found {len(rows)} rows)")
    markings = driver.find_elements(By.CLASS_NAME, "marking")
    check(len(markings) == 2 and markings[0].text == "CONFIDENTIAL", "a CONFIDENTIAL banner at the top and the bottom")
    shot(driver, "journal")
    Select(driver.find_element(By.NAME, "member_state")).select_by_value("KEN")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()
    wait_for_url(driver, "member_state=KEN")
    rows = driver.find_elements(By.CSS_SELECTOR, "table.journal tbody tr")
    states = {row.find_elements(By.TAG_NAME, "td")[3].text for row in rows}
    check(states == {"KEN"}, f"the Member State filter keeps KEN only (found {sorted(states)})")
    driver.find_element(By.CSS_SELECTOR, f"a[href='/messages/{kenya}']").click()
    wait_for_url(driver, f"/messages/{kenya}")
    body = driver.find_element(By.TAG_NAME, "main").text
    check("<script>" in body, "the script-like recommendation text is shown as text")
    check(driver.execute_script("return window.pwned === undefined") is True, "no script from a message ran")
    driver.get(base + f"/messages/{tunisia}")
    withheld = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "main .withheld")]
    check("Withheld from this node's copy at the request of TUN: Recommendation." in withheld and "withheld at the request of TUN" in withheld,
          f"the withheld part is named, and said where it would stand (found {withheld})")
    shot(driver, "message")
    driver.get(base + "/trace")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2, "the trace page draws two coverage charts")
    shot(driver, "trace")


def coverage(driver, base, percent):
    deadline = time.monotonic() + 30
    while True:
        driver.get(base + "/trace")
        labels = [text.text for text in driver.find_elements(By.CSS_SELECTOR, "svg.chart text")]
        if any(label.startswith(percent) for label in labels):
            shot(driver, "trace")
            return
        if time.monotonic() > deadline:
            check(False, f"the trace page shows {percent} coverage (labels: {labels})")
            return
        time.sleep(0.2)


def review_then_publish(driver):
    """On the review page: nothing sent yet, who receives it said; then Publish."""
    try:
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.recipients"))
    except Exception:
        check(False, f"the review page names the recipients (at {driver.current_url})")
        return
    check("Nothing has been sent yet" in driver.find_element(By.TAG_NAME, "main").text, "the review says nothing was sent yet")
    check(driver.find_element(By.CSS_SELECTOR, "p.recipients").text.startswith("Reaches "), "the review says who it reaches")
    shot(driver, "review")
    driver.find_element(By.CSS_SELECTOR, "button[value=publish]").click()
    wait_for_url(driver, "/messages/")


def compose(driver, base, other):
    driver.get(base + "/compose")
    driver.find_element(By.LINK_TEXT, "Mission report").click()
    wait_for_url(driver, "/compose/mission-report")
    check(not driver.find_elements(By.CSS_SELECTOR, "button[value=publish]"), "the form itself has no Publish button")
    driver.find_element(By.CSS_SELECTOR, "button[value=review]").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "div.errors"))
    errors = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "p.error")}
    for field in ("mission_id", "kind", "dates", "participating_entities", "summary"):
        check(f"f-mission_report.{field}-error" in errors, f"an empty form shows an error next to {field} (found {sorted(errors)})")
    shot(driver, "compose")

    def type_into(name, text):
        element = driver.find_element(By.NAME, name)
        element.clear()
        element.send_keys(text)

    type_into("mission_report.mission_id", "MISSION-2026-KEN-09")
    Select(driver.find_element(By.NAME, "mission_report.kind")).select_by_visible_text("workshop")
    type_into("mission_report.member_state", "KEN")
    # Date fields take the digits in the browser's order (en-US: month, day, year).
    driver.find_element(By.NAME, "mission_report.dates.start").send_keys("11022026")
    driver.find_element(By.NAME, "mission_report.dates.end").send_keys("11032026")
    type_into("mission_report.participating_entities", "UNOCT\nCTED")
    summary = "Border management workshop held in Mombasa with the national police."
    type_into("mission_report.summary", summary)
    type_into("envelope.thematic_tags", "border-security")
    # Enter in a field presses the first button: the review, never Publish.
    driver.find_element(By.NAME, "mission_report.mission_id").send_keys("\n")
    review_then_publish(driver)
    message_id = driver.current_url.rsplit("/", 1)[-1].split("?")[0]
    main = driver.find_element(By.TAG_NAME, "main").text
    check("published by oct" in main, "the published report shows as published by oct")
    check("Published: signed and queued" in main, "the page confirms the publication")

    deadline = time.monotonic() + 30
    while True:
        driver.get(other + "/journal?type=MISSION_REPORT")
        if driver.find_elements(By.CSS_SELECTOR, f"a[href='/messages/{message_id}']"):
            break
        if time.monotonic() > deadline:
            check(False, f"the mission report {message_id} reached the working group's journal")
            return
        time.sleep(0.2)
    driver.find_element(By.CSS_SELECTOR, f"a[href='/messages/{message_id}']").click()
    wait_for_url(driver, message_id)
    check(summary in driver.find_element(By.TAG_NAME, "main").text, "the working group reads the summary as written")


def subscribe(driver, base):
    """A subscription added with the keyboard: a mistake is shown by its field, nothing added; then it is."""
    driver.get(base + "/notifications")

    def fill(states):
        for name, text in (("name", "Kenya desk"), ("target", "kenya-desk@oct.example"), ("memberStates", states)):
            element = driver.find_element(By.NAME, name)
            element.clear()
            element.send_keys(text)
        box = driver.find_element(By.CSS_SELECTOR, "input[name=types][value=COUNTRY_VISIT_RECOMMENDATION]")
        if not box.is_selected():
            box.click()
        driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=daily]").click()
        driver.find_element(By.NAME, "name").send_keys("\n")

    fill("Kenya")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.error"))
    errors = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "p.error")]
    check(any('"Kenya" is unknown' in e for e in errors), f"an unknown State is named by its field (found {errors})")
    check("None yet." in driver.find_element(By.TAG_NAME, "main").text, "nothing was added")
    fill("KEN")
    wait_for_url(driver, "done=subscribed")
    main = driver.find_element(By.TAG_NAME, "main").text
    check("Subscribed" in main, "the page confirms the subscription")
    check("country visit recommendations, about Kenya (KEN)" in main, "the subscription says what it is told of")
    check("daily digest at 07:00 UTC" in main, "and when")
    shot(driver, "notifications")


def matrix(driver, base, csv_file):
    driver.get(base + "/compose/activity-matrix")
    driver.find_element(By.NAME, "activity_matrix.reporting_period.start").send_keys("01012026")
    driver.find_element(By.NAME, "activity_matrix.reporting_period.end").send_keys("06302026")
    driver.find_element(By.NAME, "activity_matrix.activities_file").send_keys(os.path.abspath(csv_file))
    driver.find_element(By.CSS_SELECTOR, "button[value=review]").click()
    review_then_publish(driver)
    text = driver.find_element(By.TAG_NAME, "main").text
    check("Activity matrix published by oct" in text, "the uploaded matrix shows as an activity matrix published by oct")
    check("Advance passenger information for Kenya" in text, "the matrix's activity is listed by its title")


def page_width_problems(driver, path):
    """What makes a page wider than its window, or leaves its marking outside the landmarks."""
    problems = []
    scroll, inner = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    if scroll > inner:
        problems.append(f"{path} is {scroll} px wide in a {inner} px window")
    viewport = driver.find_elements(By.CSS_SELECTOR, "meta[name=viewport]")
    if not viewport or "width=device-width" not in (viewport[0].get_attribute("content") or ""):
        problems.append(f"{path} has no viewport tag")
    top = driver.find_elements(By.CSS_SELECTOR, "body > header > .marking")
    bottom = driver.find_elements(By.CSS_SELECTOR, "body > footer > .marking")
    if len(top) != 1 or len(bottom) != 1 or not top[0].text.strip():
        problems.append(f"{path} lacks its marking banner in the header or the footer")
    return problems


def layout(driver, base, *paths):
    for width, height, label in ((1280, 900, "desktop"), (390, 844, "phone")):
        driver.set_window_size(width, height)
        shot_on_phone = set()
        for path in paths:
            driver.get(base + path)
            for problem in page_width_problems(driver, path):
                check(False, f"{label}: {problem}")
            section = path.strip("/").split("?")[0].split("/")[0]
            if label == "desktop" and path.startswith("/states/"):
                shot(driver, "country")
            if label == "phone" and section not in shot_on_phone:
                shot_on_phone.add(section)
                shot(driver, "phone-" + section)


def axe(driver, base, axe_js, *paths):
    with open(axe_js, encoding="utf-8") as source:
        script = source.read()
    for path in paths:
        driver.get(base + path)
        # WebDriver's scripts are not the page's: the console's CSP (no script) does not apply to them.
        driver.execute_script(script)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
            "v => [v.id, v.impact, v.nodes.length, v.nodes.slice(0, 2).map(n => n.target.join(' '))])));")
        for rule, impact, count, targets in result:
            if impact in ("critical", "serious", "moderate"):
                check(False, f"axe on {path}: {impact} {rule} on {count} elements, such as {targets}")


def main():
    step, base, arguments = sys.argv[1], sys.argv[2], sys.argv[3:]
    driver = browser()
    try:
        driver.set_script_timeout(60)
        {"journal": journal, "coverage": coverage, "compose": compose, "matrix": matrix, "layout": layout,
         "axe": axe, "subscribe": subscribe}[step](driver, base, *arguments)
    finally:
        driver.quit()
    for failure in failures:
        print("FAILED: " + failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
