"""The search page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by Selenium types a query, waits for the hits, checks the highlighted line and the keys,
and saves a screenshot (M2VSEARCH_SCREENSHOT=FILE keeps a copy there). Skipped without them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'm2vsearch[serve]')")
pytest.importorskip("selenium", reason="needs selenium: pip install 'm2vsearch[test]'")

from reliability import cli, make_docs  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from serving import serving  # noqa: E402

BROWSER = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture()
def browser() -> Iterator[Any]:
    if BROWSER is None or DRIVER is None:
        pytest.skip("needs Chromium and its driver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_searches_as_you_type_marks_the_line_and_follows_the_keys(tmp_path: Path, browser: Any) -> None:
    docs = make_docs(tmp_path / "docs", 4)
    (docs / "volcano.md").write_text("# Volcano\n\nMagma rises and erupts from the crater.\nAsh falls.\n")
    (docs / "lake.md").write_text("# Crater lake\n\nA lake fills the crater of an old volcano.\n")
    index = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(index)).returncode == 0
    with serving(index, "--editor-url", "health?open={path}&line={line}") as server:
        browser.get(server.url)
        browser.find_element(By.TAG_NAME, "body").click()
        browser.find_element(By.TAG_NAME, "body").send_keys("/")  # `/` focuses the search box
        box = browser.switch_to.active_element
        assert box.get_attribute("id") == "q"
        box.send_keys("magma crater")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".hit .path"))
        hits = browser.find_elements(By.CSS_SELECTOR, ".hit")
        assert hits[0].find_element(By.CSS_SELECTOR, ".path").text.endswith("volcano.md:3")
        best = hits[0].find_element(By.CSS_SELECTOR, ".best")
        assert best.find_element(By.CSS_SELECTOR, ".ln").text == "3"
        assert [mark.text for mark in best.find_elements(By.TAG_NAME, "mark")] == ["Magma", "crater"]
        assert "sel" in hits[0].get_attribute("class")
        screenshot = tmp_path / "page.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 1000
        if os.environ.get("M2VSEARCH_SCREENSHOT"):
            shutil.copyfile(screenshot, os.environ["M2VSEARCH_SCREENSHOT"])
        assert len(hits) > 1
        box.send_keys(Keys.ARROW_DOWN)
        assert "sel" in hits[1].get_attribute("class") and "sel" not in hits[0].get_attribute("class")
        box.send_keys(Keys.ARROW_UP)
        assert "sel" in hits[0].get_attribute("class")
        box.send_keys(Keys.ENTER)  # opens the hit at its line through the configured link
        wait.until(lambda driver: "/health?open=" in driver.current_url)
        assert browser.current_url.endswith("volcano.md&line=3")
