// Progressive enhancement only: every page works without it. No inline script (CSP script-src 'self').
document.addEventListener('submit', function (e) {
  var form = e.target;
  var button = form.querySelector('button[type=submit]');
  if (!button) return;
  // progress for slow operations (an RSA key on a real TPM takes seconds), and no double submit
  button.disabled = true;
  button.textContent = form.getAttribute('data-progress') || 'Working…';
  button.setAttribute('aria-busy', 'true');
});
document.addEventListener('input', function (e) {
  var form = e.target.form;
  if (!form || !form.hasAttribute('data-confirm') || e.target.name !== 'confirm') return;
  var ok = e.target.value.trim() === form.getAttribute('data-confirm');
  form.querySelector('button[type=submit]').disabled = !ok;
});
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('form[data-confirm] button[type=submit]').forEach(function (b) { b.disabled = true; });
});
