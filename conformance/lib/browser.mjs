// Debian's Chromium through playwright-core, with the network closed to everything but one
// origin, and a layout check that a person would make by eye: nothing wider than the screen,
// no two controls on top of each other.

import { chromium } from 'playwright-core';

const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export async function launch() {
  return chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A page in a new context of `viewport`, where every request outside `origin` is aborted and
 * recorded in `blocked`, and every uncaught page error in `errors`.
 */
export async function openPage(browser, origin, viewport) {
  const context = await browser.newContext({ viewport });
  const blocked = [];
  const errors = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    blocked.push(url);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  return { context, page, blocked, errors };
}

/**
 * What overlaps or spills over on the page as it is drawn now: the document wider than the
 * window, and pairs of visible controls, badges and headings whose boxes intersect (an element
 * and its own ancestor excepted). Returns a list of descriptions; empty means a clean layout.
 */
export async function layoutProblems(page) {
  return page.evaluate(() => {
    const problems = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width + 1) {
      problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a ${width}px window`);
    }
    const selector = 'button, input, select, textarea, a, .badge, h1, h2, h3, .avatar, .email, .name, .hint, .muted';
    const boxes = [...document.querySelectorAll(selector)]
      .filter((element) => {
        const style = getComputedStyle(element);
        if (style.visibility === 'hidden' || style.display === 'none') return false;
        // Inside a scrolling strip (the nav on a phone) an element can sit outside the window.
        const box = element.getBoundingClientRect();
        return box.width > 0 && box.height > 0 && !element.closest('dialog:not([open])');
      })
      .map((element) => ({ element, box: element.getBoundingClientRect() }));
    const name = (element) => `${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${element.className ? `.${String(element.className).split(' ').join('.')}` : ''} "${(element.textContent || element.value || '').trim().slice(0, 30)}"`;
    for (let i = 0; i < boxes.length; i += 1) {
      const a = boxes[i];
      if (a.box.right > width + 1 && !a.element.closest('#nav, .table-wrap')) {
        problems.push(`${name(a.element)} ends at ${Math.round(a.box.right)}px, past the window's ${width}px`);
      }
      for (let j = i + 1; j < boxes.length; j += 1) {
        const b = boxes[j];
        if (a.element.contains(b.element) || b.element.contains(a.element)) continue;
        const overlapX = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
        const overlapY = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
        if (overlapX > 2 && overlapY > 2) problems.push(`${name(a.element)} overlaps ${name(b.element)}`);
      }
    }
    return problems.slice(0, 20);
  });
}
