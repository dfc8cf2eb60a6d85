// Opens and scrolls to the source card a [n] marker points at. The sources panel runs it once,
// on load; without it the markers still work as plain in-page anchors.
if (!window.__qaCites) {
  window.__qaCites = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest ? event.target.closest('a.qa-cite') : null;
    if (!link) return;
    const id = (link.getAttribute('href') || '').slice(1);
    const card = id ? document.getElementById(id) : null;
    if (!card) return;
    event.preventDefault();
    event.stopPropagation();
    for (let d = card.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) {
      d.open = true;
    }
    document.querySelectorAll('.qa-source.qa-active').forEach((el) => el.classList.remove('qa-active'));
    card.classList.add('qa-active');
    // Scroll the panel, not the page, when the panel scrolls on its own (wide screens).
    const panel = document.getElementById('qa-sources');
    if (panel && panel.scrollHeight > panel.clientHeight && panel.contains(card)) {
      const top = card.getBoundingClientRect().top - panel.getBoundingClientRect().top;
      panel.scrollTo({top: panel.scrollTop + top - 8, behavior: 'smooth'});
    } else {
      card.scrollIntoView({behavior: 'smooth', block: 'start'});
    }
  }, true);
}
