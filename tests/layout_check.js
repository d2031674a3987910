() => {
  // text that does not fit its box: clipped, cut with an ellipsis, or behind a horizontal scroll bar
  const out = [];
  const seen = new Set();
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    let el = node.parentElement;
    if (!el || el.closest('svg, [data-testid=stSidebar], script, style, noscript, [data-testid=stDataFrame], .katex-mathml, [data-testid=stSkipToContent]')) continue;
    for (let up = 0; el && up < 6 && el !== document.body; up++, el = el.parentElement) {
      if (seen.has(el)) break;
      const cs = getComputedStyle(el);
      if (el.scrollWidth > el.clientWidth + 2 && el.clientWidth > 2 && visible(el)
          && (cs.overflowX !== 'visible' || cs.textOverflow === 'ellipsis')) {
        seen.add(el);
        out.push({kind: 'clipped', text: Array.from(el.innerText.replace(/\s+/g, ' ')).slice(0, 80).join(''), scroll: el.scrollWidth, client: el.clientWidth,
                  tag: el.tagName, testid: (el.closest('[data-testid]') || {}).dataset?.testid});
        break;
      }
    }
  }
  // chart titles (the figure's and the subplots'): inside their chart, and not on top of each other
  document.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    const box = plot.getBoundingClientRect();
    const titles = [...plot.querySelectorAll('.gtitle, .annotation-text, .legendtext, .g-xtitle text, .g-ytitle text')]
      .filter(t => t.textContent.trim()).map(t => ({t, r: t.getBoundingClientRect(), text: Array.from(t.textContent).slice(0, 60).join('')}));
    for (const a of titles) {
      if (a.r.left < box.left - 1 || a.r.right > box.right + 1)
        out.push({kind: 'title outside chart', chart: i, text: a.text, left: a.r.left - box.left, right: a.r.right - box.right});
    }
    const heads = titles.filter(a => a.t.matches('.gtitle, .annotation-text'));
    for (let x = 0; x < heads.length; x++) for (let y = x + 1; y < heads.length; y++) {
      const a = heads[x].r, b = heads[y].r;
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        out.push({kind: 'titles overlap', chart: i, text: heads[x].text + ' | ' + heads[y].text});
    }
  });
  return out;
}
