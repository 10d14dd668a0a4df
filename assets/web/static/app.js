// The Gata web UI's page script. The server renders every piece of the page (/ui/…);
// this script only signs in, swaps those pieces in, sends the user's actions to the
// JSON API (/api/…) and follows the server's events.
'use strict';

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const csrfKey = 'gata.csrf';
  const state = {
    csrf: sessionStorage.getItem(csrfKey) || '',
    sections: [],
    section: '',
    events: null,
    jobsTimer: 0,
    modelJobs: false, // a model job changed since the last refresh
  };

  class APIError extends Error {
    constructor(status, body) {
      super((body && body.error) || `request failed with status ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  // request calls the server; unsafe methods carry the session's CSRF token. A body is
  // sent as JSON, a form (FormData) as multipart/form-data.
  async function request(method, path, { body, form, headers = {} } = {}) {
    const h = { Accept: 'application/json, text/html', ...headers };
    if (method !== 'GET' && state.csrf) h['X-CSRF-Token'] = state.csrf;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers: h,
      body: form || (body === undefined ? undefined : JSON.stringify(body)),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const type = res.headers.get('Content-Type') || '';
    const data = type.includes('application/json') ? await res.json().catch(() => null) : await res.text();
    if (!res.ok) {
      // A refused key or password is answered where it was typed; any other 401 means
      // the session ended.
      if (res.status === 401 && !headers['X-API-Key'] && path !== '/api/login') signedOut(data);
      throw new APIError(res.status, typeof data === 'object' ? data : null);
    }
    return data;
  }

  // ---- signing in ----

  async function signIn() {
    const m = location.hash.match(/^#key=([^&]+)/);
    if (m) {
      // The key never stays in the address bar or the history.
      history.replaceState(null, '', location.pathname + location.search);
      try {
        const s = await request('POST', '/api/session', { headers: { 'X-API-Key': decodeURIComponent(m[1]) } });
        return setSession(s);
      } catch (e) {
        if (e.status !== 401) throw e;
        showSignIn(e.body, 'That link’s key is not valid for this app (it changes when the data folder does).');
        return false;
      }
    }
    try {
      return setSession(await request('GET', '/api/session'));
    } catch (e) {
      if (e.status === 401) return false;
      throw e;
    }
  }

  function setSession(s) {
    state.csrf = (s && s.csrf_token) || '';
    sessionStorage.setItem(csrfKey, state.csrf);
    return true;
  }

  function signedOut(body) {
    if (state.events) state.events.close();
    state.events = null;
    showSignIn(body, state.sections.length ? 'You were signed out: the app restarted or the session ended.' : '');
  }

  function showSignIn(body, note) {
    $('#view').hidden = true;
    $('#nav').replaceChildren();
    $('#sign-out').hidden = true;
    const box = $('#signin');
    box.hidden = false;
    const password = !!(body && body.password_login);
    $('#login-form').hidden = !password;
    $('#signin-key').hidden = password;
    setBanner(note || '', 'warn');
    if (password) $('#login-password').focus();
  }

  async function login(ev) {
    ev.preventDefault();
    const err = $('#login-error');
    err.hidden = true;
    try {
      setSession(await request('POST', '/api/login', { body: { password: $('#login-password').value } }));
      $('#login-password').value = '';
      await start();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  async function signOut() {
    try {
      await request('DELETE', '/api/session');
    } catch (e) {
      // already signed out
    }
    sessionStorage.removeItem(csrfKey);
    state.csrf = '';
    state.sections = [];
    signedOut({});
  }

  // ---- the page ----

  async function start() {
    $('#signin').hidden = true;
    $('#view').hidden = false;
    $('#sign-out').hidden = false;
    setBanner('');
    const [nav, sections, info, settings] = await Promise.all([
      request('GET', '/ui/nav'),
      request('GET', '/api/sections'),
      request('GET', '/api/info'),
      request('GET', '/api/settings'),
    ]);
    $('#nav').innerHTML = nav;
    state.sections = sections.map((s) => s.id);
    $('#app-version').textContent = `Version ${info.version}`;
    for (const s of settings) applySetting(s);
    connectEvents();
    await route(false);
  }

  function currentSection() {
    const m = location.hash.match(/^#\/([\w-]+)/);
    return m && state.sections.includes(m[1]) ? m[1] : state.sections[0];
  }

  async function route(focus = true) {
    const id = currentSection();
    if (!id) return;
    const html = await request('GET', `/ui/section/${encodeURIComponent(id)}`);
    state.section = id;
    const view = $('#view');
    view.innerHTML = html;
    for (const a of document.querySelectorAll('#nav a[data-section]')) {
      if (a.dataset.section === id) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const title = $('h1', view);
    document.title = `${title ? title.textContent : id} · Gata Contributor`;
    if (focus && title) title.focus({ preventScroll: true });
  }

  function setBanner(text, kind = 'info') {
    const b = $('#banner');
    b.textContent = text;
    b.dataset.kind = kind;
    b.hidden = !text;
  }

  function applySetting(s) {
    if (s.key === 'ui.theme') document.documentElement.dataset.theme = s.value;
  }

  // ---- settings ----

  function changedSettings(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.readOnly || el.disabled) continue;
      if (el.type === 'checkbox') {
        if (el.checked !== el.defaultChecked) out[el.name] = el.checked;
      } else if (el.tagName === 'SELECT') {
        const def = [...el.options].find((o) => o.defaultSelected);
        if (!def || def.value !== el.value) out[el.name] = el.value;
      } else if (el.value !== el.defaultValue) {
        out[el.name] = el.value;
      }
    }
    return out;
  }

  // settle makes the controls' current values their saved ones.
  function settle(form, settings) {
    for (const s of settings) {
      const el = form.elements.namedItem(s.key);
      if (!el) continue;
      if (el.type === 'checkbox') {
        el.checked = el.defaultChecked = s.value === 'true';
      } else if (el.tagName === 'SELECT') {
        for (const o of el.options) o.defaultSelected = o.selected = o.value === s.value;
      } else {
        el.value = el.defaultValue = s.value;
      }
    }
  }

  function clearErrors(form) {
    for (const p of form.querySelectorAll('.field-error')) {
      p.hidden = true;
      p.textContent = '';
    }
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  async function saveSettings(form) {
    const status = $('#settings-status');
    clearErrors(form);
    const changes = changedSettings(form);
    const keys = Object.keys(changes);
    if (!keys.length) {
      status.textContent = 'Nothing to save.';
      return;
    }
    const button = $('#settings-save');
    button.disabled = true;
    status.textContent = 'Saving…';
    try {
      const all = await request('PATCH', '/api/settings', { body: changes });
      settle(form, all);
      for (const s of all) applySetting(s);
      const restart = all.filter((s) => s.restart && keys.includes(s.key)).map((s) => s.label);
      status.textContent = restart.length
        ? `Saved. ${restart.join(', ')} takes effect after a restart.`
        : 'Saved.';
      status.dataset.kind = 'ok';
    } catch (e) {
      status.dataset.kind = 'error';
      const field = e.body && e.body.field && form.querySelector(`.field[data-key="${CSS.escape(e.body.field)}"]`);
      if (field) {
        const p = $('.field-error', field);
        p.textContent = e.message;
        p.hidden = false;
        const input = $('input, select', field);
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        status.textContent = 'Not saved: fix the field marked below.';
      } else {
        status.textContent = `Not saved: ${e.message}`;
      }
    } finally {
      button.disabled = false;
    }
  }

  // ---- jobs ----

  async function refreshJobs() {
    const box = $('#jobs');
    if (!box) return;
    box.innerHTML = await request('GET', '/ui/jobs');
  }

  // bytes formats a byte count as the server does ("512 B", "12.5 MB").
  function bytes(n) {
    if (n < 1024) return `${n} B`;
    let f = n / 1024;
    let unit = 'KB';
    for (const u of ['MB', 'GB', 'TB']) {
      if (f < 1024) break;
      f /= 1024;
      unit = u;
    }
    return `${f.toFixed(1)} ${unit}`;
  }

  // jobChanged shows a job event: progress in place while the job runs, otherwise the
  // lists that show jobs (the settings page's, the model card's) are rendered afresh by
  // the server.
  function jobChanged(j) {
    const li = document.querySelector(`#view [data-job-id="${CSS.escape(j.id)}"]`);
    const p = j.progress;
    // In place while the job runs, unless a count or message appears for the first time:
    // the server renders those.
    const fits = li && (p.total <= 0 || $('[data-role="count"]', li)) && (!p.message || $('[data-role="message"]', li));
    if (fits && li.dataset.state === 'running' && j.state === 'running') {
      const bar = $('progress', li);
      if (bar && p.total > 0) bar.value = Math.round((100 * p.done) / p.total);
      const msg = $('[data-role="message"]', li);
      if (msg) msg.textContent = p.message || '';
      const count = $('[data-role="count"]', li);
      if (count && p.total > 0) {
        count.textContent = p.unit === 'bytes'
          ? `${bytes(p.done)} of ${bytes(p.total)}`
          : `${p.done} of ${p.total} ${p.unit || ''}`.trim();
      }
      const pct = $('[data-role="percent"]', li);
      if (pct && p.total > 0) pct.textContent = `${Math.round((100 * Math.min(p.done, p.total)) / p.total)} %`;
      return;
    }
    if (j.kind.startsWith('model.')) state.modelJobs = true;
    clearTimeout(state.jobsTimer);
    state.jobsTimer = setTimeout(() => refreshJobLists().catch(showError), 50);
  }

  async function refreshJobLists() {
    const model = state.modelJobs;
    state.modelJobs = false;
    await refreshJobs();
    if (model) await refreshModelCard();
  }

  async function startCheck(button) {
    button.disabled = true;
    try {
      await request('POST', '/api/jobs/check');
      await refreshJobs();
    } finally {
      button.disabled = false;
    }
  }

  async function cancelJob(button) {
    button.disabled = true;
    await request('POST', `/api/jobs/${encodeURIComponent(button.dataset.job)}/cancel`);
  }

  // ---- validate ----

  async function refreshModelCard() {
    const box = $('#model-box');
    if (!box) return;
    box.innerHTML = await request('GET', '/ui/validate/model');
  }

  const modelPaths = { 'accept-license': 'license', 'pull-model': 'pull', 'verify-model': 'verify' };

  // modelAction accepts a licence, starts a download or a verification; the card is
  // rendered afresh and then follows the job's events.
  async function modelAction(button) {
    const err = $('#model-error');
    err.hidden = true;
    button.disabled = true;
    try {
      await request('POST', `/api/models/${encodeURIComponent(button.dataset.model)}/${modelPaths[button.dataset.action]}`);
      await refreshModelCard();
    } catch (e) {
      button.disabled = false;
      if (e.status === 401) return;
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  function readDataURL(file) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(r.result);
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });
  }

  function scoreError(text) {
    const err = $('#score-error');
    err.textContent = text;
    err.hidden = !text;
    if (text) $('#score-image').setAttribute('aria-invalid', 'true');
    else $('#score-image').removeAttribute('aria-invalid');
  }

  async function previewImage(input) {
    const box = $('#score-preview');
    const img = $('img', box);
    scoreError('');
    const file = input.files[0];
    box.hidden = true;
    img.removeAttribute('src');
    if (!file) return;
    img.onload = () => { box.hidden = false; };
    img.onerror = () => { box.hidden = true; };
    img.src = await readDataURL(file);
  }

  function modelLabel(m) {
    const name = m.name && m.dir && m.name !== m.dir ? `${m.name} (${m.dir})` : m.name || m.dir;
    return `${name} on ${m.backend}, ${m.embed_dim} dimensions`;
  }

  async function scorePair(form) {
    const button = $('#score-submit');
    const status = $('#score-status');
    scoreError('');
    const file = form.elements.image.files[0];
    if (!file) {
      scoreError('Choose an image to score.');
      return;
    }
    button.disabled = true;
    status.dataset.kind = '';
    status.textContent = 'Scoring…';
    try {
      const res = await request('POST', '/api/validate/score', { form: new FormData(form) });
      const box = $('#score-result');
      const img = $('#result-image');
      img.src = $('#score-preview img').getAttribute('src') || await readDataURL(file);
      img.alt = res.name;
      $('[data-testid="result-score"]', box).textContent = res.score.toFixed(3);
      $('[data-testid="result-caption"]', box).textContent = res.caption || '(no caption)';
      $('[data-testid="result-model"]', box).textContent = `${res.name}, scored with ${modelLabel(res.model)}`;
      box.hidden = false;
      status.textContent = '';
      await refreshModelCard();
    } catch (e) {
      status.textContent = '';
      if (e.status !== 401) scoreError(e.message);
    } finally {
      button.disabled = false;
    }
  }

  // ---- events ----

  function connectEvents() {
    if (state.events) state.events.close();
    const es = new EventSource('/api/events');
    state.events = es;
    es.addEventListener('open', () => setBanner(''));
    es.addEventListener('job', (ev) => jobChanged(JSON.parse(ev.data)));
    es.addEventListener('settings', (ev) => {
      const changed = JSON.parse(ev.data) || [];
      for (const s of changed) applySetting(s);
      if (changed.some((s) => s.key === 'validate.model')) refreshModelCard().catch(showError);
      const form = $('#settings-form');
      if (!form) return;
      // Controls the user is not editing follow changes made elsewhere.
      const editing = changedSettings(form);
      settle(form, changed.filter((s) => !(s.key in editing)));
    });
    es.addEventListener('reload', () => route(false).catch(showError));
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // The server refused the stream: find out whether we are still signed in.
        request('GET', '/api/session')
          .then(() => setTimeout(connectEvents, 2000))
          .catch(() => {});
        return;
      }
      setBanner('Connection to the app lost. Reconnecting…', 'warn');
    });
  }

  function showError(e) {
    if (e && e.status === 401) return; // the sign-in box says it
    setBanner(`Something went wrong: ${e && e.message ? e.message : e}`, 'error');
  }

  // ---- wiring ----

  document.addEventListener('submit', (ev) => {
    if (ev.target.id === 'settings-form') {
      ev.preventDefault();
      saveSettings(ev.target).catch(showError);
    } else if (ev.target.id === 'score-form') {
      ev.preventDefault();
      scorePair(ev.target).catch(showError);
    } else if (ev.target.id === 'login-form') {
      login(ev).catch(showError);
    }
  });
  document.addEventListener('click', (ev) => {
    const t = ev.target.closest('button');
    if (!t) return;
    if (t.id === 'check-start') startCheck(t).catch(showError);
    else if (t.dataset.action === 'cancel') cancelJob(t).catch(showError);
    else if (t.dataset.action in modelPaths) modelAction(t).catch(showError);
    else if (t.id === 'sign-out') signOut();
  });
  document.addEventListener('change', (ev) => {
    if (ev.target.id === 'score-image') previewImage(ev.target).catch(showError);
  });
  window.addEventListener('hashchange', () => {
    if (state.sections.length && !location.hash.startsWith('#key=')) route().catch(showError);
    else if (location.hash.startsWith('#key=')) boot();
  });

  async function boot() {
    try {
      if (await signIn()) await start();
    } catch (e) {
      showError(e);
    }
  }
  boot();
})();
