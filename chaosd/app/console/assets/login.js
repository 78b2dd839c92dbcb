// The login page: posts the token as JSON (the form also works without JavaScript, posting
// it as a form; the server then redirects). On success the server has set the session cookie.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('login');
  const error = document.getElementById('error');
  if (location.hash === '#refused') error.hidden = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const token = document.getElementById('token').value.trim();
    const r = await fetch('/login', {
      method: 'POST',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({token}),
      credentials: 'same-origin',
    });
    if (r.ok) {
      location.href = '/';
    } else {
      error.hidden = false;
    }
  });
});
