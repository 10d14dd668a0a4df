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
    runJobs: false, // a run's job changed since the last refresh
    review: null, // the review screen's run, filters, page and position
    submit: { timer: 0, options: false, list: 0, account: 0 }, // the Submit section's pending refresh and request counts
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
    const review = location.hash.match(/^#\/validate\/review\/(\d+)$/);
    const html = await request('GET', review ? `/ui/validate/review/${review[1]}` : `/ui/section/${encodeURIComponent(id)}`);
    state.section = id;
    state.review = null;
    const view = $('#view');
    view.innerHTML = html;
    for (const a of document.querySelectorAll('#nav a[data-section]')) {
      if (a.dataset.section === id) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const title = $('h1', view);
    document.title = `${title ? title.textContent : id} · Gata Contributor`;
    if (focus && title) title.focus({ preventScroll: true });
    if (review) await openReview(Number(review[1]));
    if (id === 'chat') await loadChat();
    if (id === 'submit') await loadSubmit();
    if (id === 'share') await loadShare();
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
      const rate = $('[data-role="rate"]', li);
      if (rate) rate.textContent = `${j.rate.toFixed(1)} items/s`;
      const eta = $('[data-role="eta"]', li);
      if (eta) eta.textContent = j.eta_seconds > 0 ? `about ${seconds(j.eta_seconds)} left` : '';
      return;
    }
    if (j.kind.startsWith('model.')) state.modelJobs = true;
    if (j.kind === 'dva.run') {
      state.runJobs = true;
      if (state.review && j.subject === String(state.review.run) && j.state !== 'running') reviewJobEnded(j).catch(showError);
    }
    clearTimeout(state.jobsTimer);
    state.jobsTimer = setTimeout(() => refreshJobLists().catch(showError), 50);
  }

  async function refreshJobLists() {
    const model = state.modelJobs;
    const runs = state.runJobs;
    state.modelJobs = false;
    state.runJobs = false;
    await refreshJobs();
    if (model) await refreshModelCard();
    if (runs) await refreshRuns();
  }

  // seconds formats a duration as the server does ("4 s", "2 min 5 s").
  function seconds(s) {
    const d = Math.round(s);
    return d < 60 ? `${d} s` : `${Math.floor(d / 60)} min ${d % 60} s`;
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

  // ---- batch runs ----

  async function refreshRuns() {
    const box = $('#runs');
    if (!box) return;
    box.innerHTML = await request('GET', '/ui/validate/runs');
  }

  function runError(text) {
    const err = $('#run-error');
    err.textContent = text;
    err.hidden = !text;
  }

  // startRun sends the form as a core.RunRequest; the model is the chosen one.
  async function startRun(form) {
    const button = $('#run-start');
    const status = $('#run-status');
    runError('');
    const req = {
      sources: form.elements.sources.value.split('\n').map((l) => l.trim()).filter(Boolean),
      out: form.elements.out.value.trim(),
      basic_filter: form.elements.basic_filter.checked,
    };
    const keep = form.elements.keep.value;
    const value = form.elements.keep_value.value.trim();
    if (keep !== 'all') {
      if (value === '' || Number.isNaN(Number(value))) {
        runError(keep === 'top' ? 'Give the percent of pairs to keep.' : 'Give the lowest score to keep.');
        return;
      }
      if (keep === 'top') req.keep_top = Number(value) / 100;
      else req.min_score = Number(value);
    }
    button.disabled = true;
    status.dataset.kind = '';
    status.textContent = 'Starting…';
    try {
      const job = await request('POST', '/api/runs', { body: req });
      status.dataset.kind = 'ok';
      status.textContent = `Run ${job.subject} started.`;
      await refreshRuns();
    } catch (e) {
      status.textContent = '';
      if (e.status !== 401) runError(e.message);
    } finally {
      button.disabled = false;
    }
  }

  const runPaths = { 'run-pause': 'pause', 'run-resume': 'resume', 'run-continue': 'continue', 'run-retry': 'retry' };

  // runAction pauses, goes on with, continues or retries a run; the list follows the events.
  async function runAction(button) {
    button.disabled = true;
    try {
      await request('POST', `/api/runs/${encodeURIComponent(button.dataset.run)}/${runPaths[button.dataset.action]}`);
      await refreshRuns();
    } catch (e) {
      button.disabled = false;
      throw e;
    }
  }

  // ---- review ----

  const pageSize = 50;

  function imageURL(run, it) {
    return `/api/runs/${run}/image?source=${encodeURIComponent(it.source)}&key=${encodeURIComponent(it.key)}`;
  }

  async function openReview(run) {
    const sec = $('#section-review');
    if (!sec) return;
    state.review = { run, total: 0, offset: 0, items: [], index: 0, dist: null, threshold: null, keepTimer: 0, keepSeq: 0, exporting: false };
    const t = sec.dataset.threshold;
    if (t !== undefined) state.review.threshold = Number(t);
    await Promise.all([loadReview(0), loadDistribution()]);
  }

  function reviewParams(offset) {
    const f = $('#review-filters').elements;
    const q = new URLSearchParams({ order: f.order.value, offset: String(offset), limit: String(pageSize) });
    if (f.show.value) {
      q.set('failed', 'true');
      const reason = f.show.value.split(':')[1];
      if (reason) q.set('reason', reason);
    }
    if (f.verdict.value) q.set('verdict', f.verdict.value);
    if (f.min.value !== '') q.set('min', f.min.value);
    if (f.max.value !== '') q.set('max', f.max.value);
    return q;
  }

  // loadReview fetches the page that holds pair index and shows it.
  async function loadReview(index) {
    const rv = state.review;
    const offset = Math.floor(index / pageSize) * pageSize;
    const page = await request('GET', `/api/runs/${rv.run}/review?${reviewParams(offset)}`);
    if (state.review !== rv) return;
    if (page.total > 0 && index >= page.total) return loadReview(page.total - 1);
    rv.total = page.total;
    rv.offset = page.offset;
    rv.items = page.items || [];
    rv.index = index;
    showPair();
  }

  function currentPair() {
    const rv = state.review;
    return rv && rv.items[rv.index - rv.offset];
  }

  function showPair() {
    const rv = state.review;
    const sec = $('#section-review');
    const it = currentPair();
    $('[data-testid="review-empty"]', sec).hidden = !!it;
    $('[data-testid="review-figure"]', sec).hidden = !it;
    $('[data-testid="review-facts"]', sec).hidden = !it;
    for (const b of sec.querySelectorAll('.review-nav button, .review-verdicts button')) b.disabled = !it;
    $('[data-testid="review-position"]', sec).textContent = it ? `${rv.index + 1} of ${rv.total}` : '';
    if (!it) return;
    $('[data-testid="review-prev"]', sec).disabled = rv.index === 0;
    $('[data-testid="review-next"]', sec).disabled = rv.index >= rv.total - 1;
    const img = $('#review-image');
    const none = $('[data-testid="review-noimage"]', sec);
    img.hidden = false;
    none.hidden = true;
    img.onerror = () => { img.hidden = true; none.hidden = false; };
    img.src = imageURL(rv.run, it);
    img.alt = it.caption ? `Image of: ${it.caption}` : `Image ${it.key}`;
    $('[data-testid="review-caption"]', sec).textContent = it.caption || '(no caption)';
    $('[data-testid="review-score"]', sec).textContent = it.reason ? '—' : it.score.toFixed(4);
    $('[data-testid="review-key"]', sec).textContent = it.key;
    $('[data-testid="review-size"]', sec).textContent = it.width ? `${it.width} × ${it.height}` : 'unknown';
    showVerdict(it);
    for (const el of sec.querySelectorAll('[data-role="reason"]')) el.hidden = !it.reason;
    $('[data-testid="review-reason"]', sec).textContent = it.reason ? `${it.reason}${it.error ? `: ${it.error}` : ''}` : '';
    const next = rv.items[rv.index - rv.offset + 1];
    if (next) new Image().src = imageURL(rv.run, next);
  }

  function showVerdict(it) {
    const badge = $('[data-testid="review-verdict"]');
    badge.textContent = it.verdict || 'none';
    badge.className = `badge verdict-${it.verdict || 'none'}`;
    for (const b of document.querySelectorAll('.review-verdicts button')) {
      b.setAttribute('aria-pressed', String(b.dataset.verdict === (it.verdict || '') && !!it.verdict));
    }
  }

  async function movePair(step) {
    const rv = state.review;
    const i = rv ? rv.index + step : -1;
    if (i < 0 || i >= rv.total) return;
    if (i >= rv.offset && i < rv.offset + rv.items.length) {
      rv.index = i;
      showPair();
    } else {
      await loadReview(i);
    }
  }

  async function setVerdict(verdict) {
    const rv = state.review;
    const it = currentPair();
    if (!it) return;
    const err = $('#review-error');
    err.hidden = true;
    try {
      await request('POST', `/api/runs/${rv.run}/verdict`, { body: { source: it.source, key: it.key, verdict } });
      it.verdict = verdict;
      if (currentPair() === it) showVerdict(it);
    } catch (e) {
      if (e.status === 401) return;
      err.textContent = e.message;
      err.hidden = false;
    }
  }

  // verdictChanged follows a verdict given here or elsewhere.
  function verdictChanged(v) {
    const rv = state.review;
    if (!rv || v.run !== rv.run) return;
    const it = rv.items.find((x) => x.source === v.source && x.key === v.key);
    if (!it) return;
    it.verdict = v.verdict;
    if (currentPair() === it) showVerdict(it);
  }

  // ---- the threshold ----

  const svgNS = 'http://www.w3.org/2000/svg';
  const hist = { w: 320, h: 120 };

  function svgEl(name, attrs) {
    const el = document.createElementNS(svgNS, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    return el;
  }

  async function loadDistribution() {
    const rv = state.review;
    const d = await request('GET', `/api/runs/${rv.run}/distribution?bins=40`);
    if (state.review !== rv) return;
    rv.dist = d;
    const slider = $('#threshold');
    const lo = Math.max(-1, Math.floor(d.min * 1000) / 1000);
    const hi = Math.min(1, Math.ceil(d.max * 1000) / 1000 + 0.001);
    slider.min = String(lo);
    slider.max = String(hi);
    slider.disabled = d.total === 0;
    $('#apply-threshold').disabled = d.total === 0 || $('#section-review').dataset.live === 'true';
    drawHistogram();
    setThreshold(rv.threshold === null ? lo : rv.threshold);
  }

  // drawHistogram draws the run's scores as bars, with the threshold as a line one can drag.
  function drawHistogram() {
    const rv = state.review;
    const d = rv.dist;
    const box = $('#histogram');
    const svg = svgEl('svg', { viewBox: `0 0 ${hist.w} ${hist.h}`, class: 'histogram-svg', role: 'img', 'aria-label': `Histogram of ${d.total} scores from ${d.min.toFixed(3)} to ${d.max.toFixed(3)}`, 'data-testid': 'histogram-svg' });
    const top = Math.max(1, ...d.counts);
    const bw = hist.w / d.counts.length;
    d.counts.forEach((n, i) => {
      const h = (n / top) * (hist.h - 22);
      const bar = svgEl('rect', { x: i * bw + 1, y: hist.h - 16 - h, width: Math.max(bw - 2, 1), height: h, class: 'bar', 'data-lo': d.edges[i] });
      const tip = svgEl('title', {});
      tip.textContent = `${n} from ${d.edges[i].toFixed(3)} to ${d.edges[i + 1].toFixed(3)}`;
      bar.append(tip);
      svg.append(bar);
    });
    const axis = [[d.min, 'start', 2], [d.max, 'end', hist.w - 2]];
    for (const [v, anchor, x] of axis) {
      const t = svgEl('text', { x, y: hist.h - 3, 'text-anchor': anchor, class: 'axis' });
      t.textContent = v.toFixed(3);
      svg.append(t);
    }
    svg.append(svgEl('line', { x1: 0, x2: 0, y1: 0, y2: hist.h - 16, class: 'threshold-line', 'data-testid': 'threshold-line' }));
    svg.append(svgEl('rect', { x: -6, y: 0, width: 12, height: hist.h - 16, class: 'threshold-handle' }));
    box.replaceChildren(svg);
    svg.addEventListener('pointerdown', (ev) => {
      svg.setPointerCapture(ev.pointerId);
      dragTo(svg, ev);
      const move = (e) => dragTo(svg, e);
      const up = () => {
        svg.removeEventListener('pointermove', move);
        svg.removeEventListener('pointerup', up);
        svg.removeEventListener('pointercancel', up);
      };
      svg.addEventListener('pointermove', move);
      svg.addEventListener('pointerup', up);
      svg.addEventListener('pointercancel', up);
    });
  }

  // xOf and valueAt map a score to the histogram's x and back.
  function xOf(d, v) {
    return d.max > d.min ? ((v - d.min) / (d.max - d.min)) * hist.w : 0;
  }

  function dragTo(svg, ev) {
    const d = state.review.dist;
    const r = svg.getBoundingClientRect();
    const f = Math.min(Math.max((ev.clientX - r.left) / r.width, 0), 1);
    setThreshold(d.min + f * (d.max - d.min));
  }

  // setThreshold moves the line, the slider and the kept bars, and asks the server how
  // many pairs the threshold keeps (debounced while it is dragged).
  function setThreshold(t) {
    const rv = state.review;
    const slider = $('#threshold');
    t = Math.round(t * 10000) / 10000;
    t = Math.min(Math.max(t, Number(slider.min)), Number(slider.max));
    rv.threshold = t;
    slider.value = String(t);
    slider.setAttribute('aria-valuetext', t.toFixed(4));
    $('#threshold-value').textContent = t.toFixed(4);
    const d = rv.dist;
    if (d) {
      const x = Math.min(Math.max(xOf(d, t), 0), hist.w);
      for (const l of document.querySelectorAll('#histogram .threshold-line')) { l.setAttribute('x1', x); l.setAttribute('x2', x); }
      const handle = $('#histogram .threshold-handle');
      if (handle) handle.setAttribute('x', x - 6);
      d.counts.forEach((_, i) => {
        const bar = document.querySelectorAll('#histogram .bar')[i];
        if (bar) bar.classList.toggle('kept', d.edges[i + 1] > t || (i === d.counts.length - 1 && d.max >= t));
      });
    }
    clearTimeout(rv.keepTimer);
    const seq = ++rv.keepSeq;
    $('#keep-readout').dataset.pending = 'true';
    rv.keepTimer = setTimeout(() => keepAt(t, seq).catch(showError), 120);
  }

  async function keepAt(t, seq) {
    const rv = state.review;
    const k = await request('GET', `/api/runs/${rv.run}/keep?threshold=${encodeURIComponent(t)}`);
    if (state.review !== rv || seq !== rv.keepSeq) return;
    const out = $('#keep-readout');
    out.dataset.pending = 'false';
    out.dataset.kept = String(k.kept);
    out.dataset.threshold = String(t);
    const pct = (100 * k.fraction).toFixed(k.fraction > 0 && k.fraction < 0.1 ? 2 : 1);
    out.textContent = `Keeps ${k.kept} of ${k.total} scored pairs: the top ${pct} %.`;
    $('[data-testid="keep-fraction"]').textContent = `top ${pct} %`;
  }

  async function applyThreshold(button) {
    const rv = state.review;
    const status = $('#apply-status');
    button.disabled = true;
    status.dataset.kind = '';
    status.textContent = 'Exporting…';
    try {
      const job = await request('POST', `/api/runs/${rv.run}/continue`, { body: { min_score: rv.threshold } });
      rv.exporting = job.id;
      $('#section-review').dataset.live = 'true';
    } catch (e) {
      button.disabled = false;
      status.textContent = '';
      if (e.status !== 401) {
        status.dataset.kind = 'error';
        status.textContent = `Not exported: ${e.message}`;
      }
    }
  }

  // reviewJobEnded says how the export (or the run's scoring) ended.
  async function reviewJobEnded(j) {
    const rv = state.review;
    const sec = $('#section-review');
    sec.dataset.live = 'false';
    $('#apply-threshold').disabled = !rv.dist || rv.dist.total === 0;
    const status = $('#apply-status');
    if (j.state === 'done') {
      const s = await request('GET', `/api/runs/${rv.run}`);
      if (state.review !== rv) return;
      status.dataset.kind = 'ok';
      const sum = s.summary;
      status.textContent = sum ? `Exported: ${sum.kept} of ${sum.scored} kept.` : 'Done.';
      status.dataset.kept = sum ? String(sum.kept) : '';
      if (!rv.exporting) await Promise.all([loadDistribution(), loadReview(rv.index)]);
    } else {
      status.dataset.kind = 'error';
      status.textContent = j.state === 'cancelled' ? 'The export was cancelled.' : `Not exported: ${j.error}`;
    }
    rv.exporting = false;
  }

  // reviewKey is the review screen's keyboard: ←/→ or j/k move, K or Enter keeps, R or
  // Backspace rejects, U clears.
  function reviewKey(ev) {
    if (!state.review || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const t = ev.target;
    if (t.closest && t.closest('input, select, textarea')) return;
    const onControl = t.closest && t.closest('button, a');
    let act;
    switch (ev.key) {
      case 'ArrowLeft': case 'j': act = () => movePair(-1); break;
      case 'ArrowRight': case 'k': act = () => movePair(1); break;
      case 'K': act = () => setVerdict('keep'); break;
      case 'Enter': if (!onControl) act = () => setVerdict('keep'); break;
      case 'R': case 'r': case 'Backspace': act = () => setVerdict('reject'); break;
      case 'U': case 'u': act = () => setVerdict(''); break;
      default:
    }
    if (!act) return;
    ev.preventDefault();
    act().catch(showError);
  }

  // ---- chat ----

  // state.chat is the battle on screen; its columns follow the chat events.
  state.chat = { battle: '', loading: false };

  async function loadChat() {
    const [providers, models, board, history] = await Promise.all([
      request('GET', '/ui/chat/providers'),
      request('GET', '/ui/chat/models'),
      request('GET', '/ui/chat/leaderboard'),
      request('GET', '/ui/chat/history'),
    ]);
    if ($('#chat-providers')) $('#chat-providers').innerHTML = providers;
    if ($('#chat-models')) $('#chat-models').innerHTML = models;
    if ($('#chat-leaderboard')) $('#chat-leaderboard').innerHTML = board;
    if ($('#chat-history')) $('#chat-history').innerHTML = history;
    if (state.chat.battle) await showBattle(state.chat.battle);
  }

  function chatFieldError(id, text) {
    const err = $(id);
    if (!err) return;
    err.textContent = text;
    err.hidden = !text;
  }

  async function showBattle(id) {
    const box = $('#chat-battle');
    if (!box) return;
    state.chat.battle = id;
    state.chat.loading = true;
    try {
      box.innerHTML = await request('GET', `/ui/chat/battles/${encodeURIComponent(id)}`);
    } finally {
      state.chat.loading = false;
    }
    if (state.chat.again) {
      state.chat.again = false;
      await showBattle(id);
    }
  }

  // reloadBattle fetches the battle afresh after missed events; the columns are redrawn.
  async function reloadBattle() {
    if (!state.chat.battle || !$('#chat-battle')) return;
    try {
      await request('GET', `/api/chat/battles/${encodeURIComponent(state.chat.battle)}`);
    } catch (err) {
      if (err.status === 404) {
        state.chat.battle = '';
        $('#chat-battle').innerHTML = '';
        return;
      }
      throw err;
    }
    await showBattle(state.chat.battle);
  }

  async function addProvider(form) {
    chatFieldError('#chat-provider-error', '');
    const e = form.elements;
    const body = {
      name: e.name.value.trim(),
      kind: e.kind.value,
      base_url: e.base_url.value.trim(),
      api_key_env: e.api_key_env.value.trim(),
      api_key: e.api_key.value.trim(),
      models: e.models.value.split(',').map((m) => m.trim()).filter(Boolean),
    };
    try {
      await request('POST', '/api/chat/providers', { body });
      form.reset();
      await loadChat();
    } catch (err) {
      if (err.status !== 401) chatFieldError('#chat-provider-error', err.message);
    }
  }

  async function unlockSecrets(form) {
    chatFieldError('#chat-unlock-error', '');
    try {
      await request('POST', '/api/secrets/unlock', { body: { passphrase: form.elements.passphrase.value } });
      await loadChat();
    } catch (err) {
      if (err.status !== 401) chatFieldError('#chat-unlock-error', err.message);
    }
  }

  async function setProviderKey(form) {
    const provider = form.dataset.provider;
    await request('PUT', `/api/chat/providers/${encodeURIComponent(provider)}/key`, { body: { api_key: form.elements.api_key.value.trim() } });
    await loadChat();
  }

  async function loadChatHistory() {
    if ($('#chat-history')) $('#chat-history').innerHTML = await request('GET', '/ui/chat/history');
  }

  async function removeProvider(button) {
    button.disabled = true;
    try {
      await request('DELETE', `/api/chat/providers/${encodeURIComponent(button.dataset.provider)}`);
      await loadChat();
    } catch (err) {
      button.disabled = false;
      throw err;
    }
  }

  async function startBattle(form) {
    chatFieldError('#chat-error', '');
    const models = [...form.querySelectorAll('input[name="models"]:checked')].map((i) => i.value);
    if (models.length < 2 || models.length > 4) {
      chatFieldError('#chat-error', 'Pick two to four models.');
      return;
    }
    const prompt = form.elements.prompt.value;
    if (!prompt.trim()) {
      chatFieldError('#chat-error', 'Write a prompt.');
      return;
    }
    const button = $('#chat-start');
    button.disabled = true;
    try {
      const b = await request('POST', '/api/chat/battles', { body: { models, prompt, blind: form.elements.blind.checked } });
      await showBattle(b.id);
    } catch (err) {
      if (err.status !== 401) chatFieldError('#chat-error', err.message);
    } finally {
      button.disabled = false;
    }
  }

  async function battleAction(path, body) {
    chatFieldError('#chat-battle-error', '');
    try {
      await request('POST', `/api/chat/battles/${encodeURIComponent(state.chat.battle)}/${path}`, { body });
      await showBattle(state.chat.battle);
    } catch (err) {
      if (err.status !== 401) chatFieldError('#chat-battle-error', err.message);
    }
  }

  function vote(button) {
    const form = $('#chat-vote-form');
    const reason = form ? form.elements.reason.value.trim() : '';
    return battleAction('vote', { outcome: button.dataset.outcome, reason }).then(() =>
      request('GET', '/ui/chat/leaderboard').then((html) => {
        if ($('#chat-leaderboard')) $('#chat-leaderboard').innerHTML = html;
      }));
  }

  function chatAnswer(e) {
    return $(`#chat-battle .chat-column[data-column="${e.column}"] .chat-answer[data-turn="${e.turn}"]`);
  }

  // chatChanged follows a battle's events: text streams into its column; the end and the
  // vote redraw the battle (votes open, names appear).
  function chatChanged(e) {
    if (e && (e.kind === 'end' || e.kind === 'vote') && $('#chat-history')) loadChatHistory().catch(showError);
    if (!e || e.battle !== state.chat.battle || !$('#chat-battle')) return;
    if (state.chat.loading) {
      // The battle is being drawn; the end or vote must not be lost behind it.
      if (e.kind === 'end' || e.kind === 'vote') state.chat.again = true;
      return;
    }
    if (e.kind === 'end' || e.kind === 'vote') {
      showBattle(e.battle).catch(showError);
      return;
    }
    const a = chatAnswer(e);
    if (!a) {
      showBattle(e.battle).catch(showError); // a turn this page has not drawn yet
      return;
    }
    const text = $('.chat-text', a);
    const err = $('.chat-answer-error', a);
    const stats = $('.chat-stats', a);
    if (e.kind === 'start') {
      text.textContent = '';
      err.hidden = true;
      stats.textContent = 'Answering…';
    } else if (e.kind === 'delta') {
      text.textContent += e.text || '';
    } else if (e.kind === 'error') {
      err.textContent = e.error || 'The model failed.';
      err.hidden = false;
      stats.textContent = '';
    } else if (e.kind === 'done') {
      const parts = [];
      if (e.ttft_ms) parts.push(`First token ${e.ttft_ms} ms`);
      if (e.tokens_per_sec) parts.push(`${e.tokens_per_sec.toFixed(1)} tokens/s`);
      stats.textContent = parts.join(' · ');
    }
  }

  // ---- events ----

  function connectEvents() {
    if (state.events) state.events.close();
    const es = new EventSource('/api/events');
    state.events = es;
    es.addEventListener('open', () => setBanner(''));
    es.addEventListener('job', (ev) => {
      const j = JSON.parse(ev.data);
      jobChanged(j);
      if (j && j.kind === 'share.worker' && state.section === 'share' && $('#share-status')) loadShare().catch(showError);
    });
    es.addEventListener('run.paused', () => refreshRuns().catch(showError));
    es.addEventListener('verdict', (ev) => verdictChanged(JSON.parse(ev.data)));
    es.addEventListener('settings', (ev) => {
      const changed = JSON.parse(ev.data) || [];
      for (const s of changed) applySetting(s);
      if (changed.some((s) => s.key === 'validate.model')) refreshModelCard().catch(showError);
      if (changed.some((s) => s.key.startsWith('greenfield.'))) refreshAccount().catch(showError);
      const form = $('#settings-form');
      if (!form) return;
      // Controls the user is not editing follow changes made elsewhere.
      const editing = changedSettings(form);
      settle(form, changed.filter((s) => !(s.key in editing)));
    });
    es.addEventListener('chat', (ev) => chatChanged(JSON.parse(ev.data)));
    es.addEventListener('submission', () => submitChanged(null));
    es.addEventListener('upload', (ev) => submitChanged(JSON.parse(ev.data)));
    es.addEventListener('reload', () => {
      if (state.section === 'chat' && state.chat.battle) reloadBattle().catch(showError);
      else route(false).catch(showError);
    });
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

  // ---- submit ----

  async function loadSubmit() {
    refreshAccount().catch(showError); // the network may take a while to answer
    const [wallet] = await Promise.all([request('GET', '/ui/submit/wallet'), refreshUploads(true)]);
    if ($('#submit-wallet')) $('#submit-wallet').innerHTML = wallet;
  }

  // refreshUploads renders the submissions and their uploads afresh (and the share
  // form's choices, with options); an answer overtaken by a newer request is dropped.
  async function refreshUploads(options) {
    if (!$('#submit-list')) return;
    const n = ++state.submit.list;
    const [list, opts] = await Promise.all([request('GET', '/ui/submit/list'), options ? request('GET', '/ui/submit/share-options') : null]);
    if (n !== state.submit.list || !$('#submit-list')) return;
    $('#submit-list').innerHTML = list;
    const select = $('#submit-share-target');
    if (opts !== null && select) {
      const chosen = select.value;
      select.innerHTML = opts;
      if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
    }
  }

  async function refreshAccount() {
    const box = $('#submit-account');
    if (!box) return;
    const n = ++state.submit.account;
    const html = await request('GET', '/ui/submit/account');
    if (n === state.submit.account && $('#submit-account')) $('#submit-account').innerHTML = html;
  }

  // submitChanged follows the submission (item null) and upload events: the list is
  // rendered afresh once a burst of progress events settles; a new submission also
  // changes the share form's choices, a finished upload the account (bucket, balance).
  function submitChanged(item) {
    if (state.section !== 'submit' || !$('#submit-list')) return;
    if (!item) state.submit.options = true;
    if (item && item.state === 'done') refreshAccount().catch(showError);
    clearTimeout(state.submit.timer);
    state.submit.timer = setTimeout(() => {
      const { options } = state.submit;
      state.submit.options = false;
      refreshUploads(options).catch(showError);
    }, 100);
  }

  function uploadAnswer(text, error) {
    $('#submit-upload-status').textContent = error ? '' : text;
    submitFieldError('#submit-upload-error', error ? text : '');
  }

  async function retryUpload(button) {
    button.disabled = true;
    const id = button.dataset.id;
    try {
      const it = await request('POST', `/api/uploads/${encodeURIComponent(id)}/retry`);
      uploadAnswer(it.state === 'queued'
        ? `Submission ${id} is queued for an attempt now (the count of attempts starts again).`
        : `Submission ${id} is ${it.state}: there is nothing to retry.`);
    } catch (err) {
      button.disabled = false;
      if (err.status !== 401) uploadAnswer(`Retry of submission ${id}: ${err.message}`, true);
      return;
    }
    await refreshUploads(false);
  }

  async function shareUploads(form) {
    submitFieldError('#submit-share-error', '');
    $('#submit-share-result').textContent = '';
    const address = form.elements.address.value.trim();
    const id = Number(form.elements.submission_id.value);
    const button = $('#submit-share');
    button.disabled = true;
    try {
      const items = await request('POST', '/api/uploads/share', { body: { address, submission_id: id } });
      const shares = items.map((it) => (it.shares || []).find((s) => s.address.toLowerCase() === address.toLowerCase()));
      const granted = shares.filter((s) => s && s.granted).length;
      const what = id ? `Submission ${id}` : `${items.length} submission${items.length === 1 ? '' : 's'}`;
      const parts = [];
      if (granted) parts.push(`${granted} readable now`);
      if (items.length - granted) parts.push(`${items.length - granted} once ${items.length - granted === 1 ? 'its upload is' : 'their uploads are'} done`);
      $('#submit-share-result').textContent = items.length
        ? `${what} shared with ${shares[0] ? shares[0].address : address}: ${parts.join(', ')}.`
        : 'Nothing submitted yet: there is nothing to share.';
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-share-error', err.message);
    } finally {
      button.disabled = false;
    }
    await refreshUploads(false);
  }

  function submitFieldError(id, text) {
    const el = $(id);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }

  // newWallet shows the words once and asks three of them back.
  async function newWallet() {
    submitFieldError('#submit-confirm-error', '');
    const nw = await request('POST', '/api/wallet/new');
    const words = $('#submit-new-words');
    words.innerHTML = '';
    const p = document.createElement('p');
    p.textContent = `Your new wallet ${nw.address}. Write these ${nw.words.length} words down, in order, and keep them offline: whoever has them owns the wallet. They are shown only now.`;
    const ol = document.createElement('ol');
    ol.className = 'submit-words';
    ol.dataset.testid = 'submit-words';
    for (const w of nw.words) {
      const li = document.createElement('li');
      li.textContent = w;
      ol.append(li);
    }
    words.append(p, ol);
    words.hidden = false;
    const fields = $('#submit-confirm-fields');
    fields.innerHTML = '';
    for (const pos of nw.confirm) {
      const div = document.createElement('div');
      div.className = 'field inline';
      const label = document.createElement('label');
      label.htmlFor = `submit-confirm-${pos}`;
      label.textContent = `Word ${pos}`;
      const input = document.createElement('input');
      input.type = 'text';
      input.id = `submit-confirm-${pos}`;
      input.name = String(pos);
      input.autocomplete = 'off';
      input.spellcheck = false;
      input.dataset.testid = 'submit-confirm-word';
      div.append(label, input);
      fields.append(div);
    }
    $('#submit-confirm-form').hidden = false;
  }

  async function confirmWallet(form) {
    submitFieldError('#submit-confirm-error', '');
    const words = {};
    for (const el of form.elements) if (el.name) words[el.name] = el.value.trim();
    try {
      await request('POST', '/api/wallet/confirm', { body: { words } });
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-confirm-error', err.message);
      return;
    }
    await loadSubmit();
  }

  async function importWallet(form) {
    submitFieldError('#submit-import-error', '');
    const secret = form.elements.secret.value.trim();
    const body = /^(0x)?[0-9a-fA-F]{64}$/.test(secret) ? { private_key: secret } : { mnemonic: secret };
    try {
      await request('POST', '/api/wallet/import', { body });
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-import-error', err.message);
      return;
    }
    await loadSubmit();
  }

  async function unlockWallet(form) {
    submitFieldError('#submit-unlock-error', '');
    try {
      await request('POST', '/api/secrets/unlock', { body: { passphrase: form.elements.passphrase.value } });
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-unlock-error', err.message);
      return;
    }
    await loadSubmit();
  }

  async function submitWork(form) {
    submitFieldError('#submit-error', '');
    $('#submit-result').textContent = '';
    const dryRun = form.elements.dry_run.checked;
    const body = { kind: form.elements.kind.value, dry_run: dryRun };
    if (dryRun) body.out_dir = form.elements.out_dir.value.trim();
    const button = $('#submit-start');
    button.disabled = true;
    try {
      const res = await request('POST', '/api/submissions', { body });
      const m = res.manifest;
      $('#submit-result').textContent = `${m.kind} submission of ${m.records} records signed by ${m.submitter} (nonce ${m.nonce})` +
        (res.dry_run ? `: written to ${res.manifest_path}` : ': queued for upload');
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-error', err.message);
      return;
    } finally {
      button.disabled = false;
    }
    await refreshUploads(true);
  }

  async function verifySubmission(form) {
    submitFieldError('#submit-verify-error', '');
    $('#submit-verify-result').textContent = '';
    try {
      const res = await request('POST', '/api/verify', { body: {
        manifest_path: form.elements.manifest_path.value.trim(), jsonl_path: form.elements.jsonl_path.value.trim() } });
      $('#submit-verify-result').textContent = `Signed by ${res.signer}: ${res.manifest.kind}, ${res.manifest.records} records, content hash matches.`;
    } catch (err) {
      if (err.status !== 401) submitFieldError('#submit-verify-error', err.message);
    }
  }

  // ---- share ----

  async function loadShare() {
    const html = await request('GET', '/ui/share/status');
    if ($('#share-status')) $('#share-status').innerHTML = html;
  }

  function shareError(text) {
    const e = $('#share-error');
    if (!e) return;
    e.textContent = text;
    e.hidden = !text;
  }

  async function startSharing(form) {
    shareError('');
    const f = form.elements;
    const num = (v) => (v.trim() === '' ? 0 : Number(v));
    try {
      await request('POST', '/api/share/worker', { body: {
        pool: f.pool.value.trim(), max_temp_c: num(f.max_temp_c.value), max_power_w: num(f.max_power_w.value),
        schedule: f.schedule.value.trim(), gpu_list: f.gpus.value, pause_for: f.pause_for.value,
        allow_busy_gpu: f.allow_busy_gpu.checked, run_on_battery: f.run_on_battery.checked,
        pause_while_active: f.pause_while_active.checked, allow_fullscreen: f.allow_fullscreen.checked } });
    } catch (err) {
      if (err.status !== 401) shareError(err.message);
    }
    await loadShare();
  }

  async function stopSharing() {
    shareError('');
    try {
      await request('DELETE', '/api/share/worker');
    } catch (err) {
      if (err.status !== 401) shareError(err.message);
    }
    await loadShare();
  }

  // ---- wiring ----

  document.addEventListener('submit', (ev) => {
    if (ev.target.id === 'settings-form') {
      ev.preventDefault();
      saveSettings(ev.target).catch(showError);
    } else if (ev.target.id === 'score-form') {
      ev.preventDefault();
      scorePair(ev.target).catch(showError);
    } else if (ev.target.id === 'run-form') {
      ev.preventDefault();
      startRun(ev.target).catch(showError);
    } else if (ev.target.id === 'review-filters') {
      ev.preventDefault();
      loadReview(0).catch(showError);
    } else if (ev.target.id === 'chat-provider-form') {
      ev.preventDefault();
      addProvider(ev.target).catch(showError);
    } else if (ev.target.id === 'chat-unlock-form') {
      ev.preventDefault();
      unlockSecrets(ev.target).catch(showError);
    } else if (ev.target.classList.contains('chat-key-form')) {
      ev.preventDefault();
      setProviderKey(ev.target).catch(showError);
    } else if (ev.target.id === 'chat-battle-form') {
      ev.preventDefault();
      startBattle(ev.target).catch(showError);
    } else if (ev.target.id === 'chat-followup-form') {
      ev.preventDefault();
      battleAction('continue', { prompt: ev.target.elements.prompt.value }).catch(showError);
    } else if (ev.target.id === 'chat-vote-form') {
      ev.preventDefault();
    } else if (ev.target.id === 'submit-form') {
      ev.preventDefault();
      submitWork(ev.target).catch(showError);
    } else if (ev.target.id === 'submit-confirm-form') {
      ev.preventDefault();
      confirmWallet(ev.target).catch(showError);
    } else if (ev.target.id === 'submit-import-form') {
      ev.preventDefault();
      importWallet(ev.target).catch(showError);
    } else if (ev.target.id === 'submit-unlock-form') {
      ev.preventDefault();
      unlockWallet(ev.target).catch(showError);
    } else if (ev.target.id === 'submit-verify-form') {
      ev.preventDefault();
      verifySubmission(ev.target).catch(showError);
    } else if (ev.target.id === 'submit-share-form') {
      ev.preventDefault();
      shareUploads(ev.target).catch(showError);
    } else if (ev.target.id === 'share-form') {
      ev.preventDefault();
      startSharing(ev.target).catch(showError);
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
    else if (t.dataset.action in runPaths) runAction(t).catch(showError);
    else if (t.dataset.action === 'review-prev') movePair(-1).catch(showError);
    else if (t.dataset.action === 'review-next') movePair(1).catch(showError);
    else if (t.dataset.action === 'review-verdict') setVerdict(t.dataset.verdict).catch(showError);
    else if (t.id === 'apply-threshold') applyThreshold(t).catch(showError);
    else if (t.dataset.action === 'chat-remove-provider') removeProvider(t).catch(showError);
    else if (t.dataset.action === 'chat-stop') battleAction('stop').catch(showError);
    else if (t.dataset.action === 'chat-open') showBattle(t.dataset.battle).catch(showError);
    else if (t.dataset.action === 'chat-regenerate') battleAction('regenerate', { column: t.dataset.column }).catch(showError);
    else if (t.dataset.action === 'chat-vote') vote(t).catch(showError);
    else if (t.dataset.action === 'submit-new-wallet') newWallet().catch(showError);
    else if (t.dataset.action === 'submit-retry') retryUpload(t).catch(showError);
    else if (t.dataset.action === 'submit-account-refresh') refreshAccount().catch(showError);
    else if (t.id === 'share-stop') stopSharing().catch(showError);
    else if (t.id === 'sign-out') signOut();
  });
  document.addEventListener('change', (ev) => {
    if (ev.target.id === 'score-image') previewImage(ev.target).catch(showError);
    else if (ev.target.closest('#review-filters')) loadReview(0).catch(showError);
  });
  document.addEventListener('input', (ev) => {
    if (ev.target.id === 'threshold' && state.review) setThreshold(Number(ev.target.value));
  });
  document.addEventListener('keydown', reviewKey);
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
