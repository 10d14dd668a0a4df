// Loopback stand-ins for the LLM APIs the Chat section talks to, written against the wire
// protocols (not against our client): OpenAI chat completions with server-sent events
// (chunks, a usage chunk, [DONE]) and Anthropic Messages (message_start … message_stop).
// They check the API key as the real services do and answer 401 with the real error
// bodies otherwise.
import http from 'node:http';

// words splits a reply into the pieces streamed one by one (a word and its space).
const words = (text) => text.match(/\S+\s*/g) || [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Stream pacing, shared by every fake and changed by the test between battles:
// delayMs before each piece; while `gate` is set, streams pause after `gateAfter` pieces
// until it resolves.
export const pace = { delayMs: 0, gateAfter: 0, gate: null };

// release opens the gate and returns a new closed one (for the next battle).
export function holdStreams(after) {
  let open;
  pace.gateAfter = after;
  pace.gate = new Promise((resolve) => { open = resolve; });
  return () => { pace.gate = null; open(); };
}

async function streamPieces(res, pieces, send) {
  for (const [i, p] of pieces.entries()) {
    if (pace.gate && i === pace.gateAfter) await pace.gate;
    if (pace.delayMs) await sleep(pace.delayMs);
    if (res.destroyed) return false;
    send(p);
  }
  return true;
}

function readJSON(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (b) => { body += b; });
    req.on('end', () => {
      try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
    });
  });
}

function listen(handler) {
  const server = http.createServer((req, res) => {
    handler(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: String(e) } }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function sendJSON(res, status, v) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(v));
}

// openAI serves /v1/models and /v1/chat/completions for the models in replies
// ({model: text}); it returns {url (the base URL with /v1), requests, close}.
export async function openAI({ key, replies }) {
  const requests = [];
  const server = await listen(async (req, res) => {
    if (req.headers.authorization !== `Bearer ${key}`) {
      return sendJSON(res, 401, { error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      return sendJSON(res, 200, { object: 'list', data: Object.keys(replies).map((id) => ({ id, object: 'model', created: 1700000000, owned_by: 'e2e' })) });
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return sendJSON(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
    const body = await readJSON(req);
    requests.push(body);
    const text = replies[body.model];
    if (text === undefined) {
      return sendJSON(res, 404, { error: { message: `The model \`${body.model}\` does not exist or you do not have access to it.`, type: 'invalid_request_error', param: null, code: 'model_not_found' } });
    }
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta, finish) => ({ id: 'chatcmpl-e2e', object: 'chat.completion.chunk', created, model: body.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const data = (v) => res.write(`data: ${JSON.stringify(v)}\n\n`);
    data(chunk({ role: 'assistant', content: '' }, null));
    const pieces = words(text);
    if (!await streamPieces(res, pieces, (p) => data(chunk({ content: p }, null)))) return;
    data(chunk({}, 'stop'));
    if (body.stream_options && body.stream_options.include_usage) {
      data({ id: 'chatcmpl-e2e', object: 'chat.completion.chunk', created, model: body.model, choices: [],
        usage: { prompt_tokens: 12, completion_tokens: pieces.length, total_tokens: 12 + pieces.length } });
    }
    res.end('data: [DONE]\n\n');
  });
  return { url: `http://127.0.0.1:${server.address().port}/v1`, requests, close: () => server.close() };
}

// anthropic serves /v1/models and /v1/messages; it returns {url, requests, close}.
export async function anthropic({ key, replies }) {
  const requests = [];
  const server = await listen(async (req, res) => {
    // The API takes the key as x-api-key or as a bearer token (what the Go SDK sends).
    if (req.headers['x-api-key'] !== key && req.headers.authorization !== `Bearer ${key}`) {
      return sendJSON(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } });
    }
    if (req.method === 'GET' && req.url.startsWith('/v1/models')) {
      const data = Object.keys(replies).map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' }));
      return sendJSON(res, 200, { data, has_more: false, first_id: data[0].id, last_id: data[data.length - 1].id });
    }
    if (req.method !== 'POST' || req.url !== '/v1/messages') return sendJSON(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'not found' } });
    const body = await readJSON(req);
    requests.push(body);
    const text = replies[body.model];
    if (text === undefined) return sendJSON(res, 404, { type: 'error', error: { type: 'not_found_error', message: `model: ${body.model}` } });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (name, v) => res.write(`event: ${name}\ndata: ${JSON.stringify(v)}\n\n`);
    event('message_start', { type: 'message_start', message: { id: 'msg_e2e', type: 'message', role: 'assistant', model: body.model,
      content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, output_tokens: 1 } } });
    event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    event('ping', { type: 'ping' });
    const pieces = words(text);
    if (!await streamPieces(res, pieces, (p) => event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: p } }))) return;
    event('content_block_stop', { type: 'content_block_stop', index: 0 });
    event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: pieces.length } });
    event('message_stop', { type: 'message_stop' });
    res.end();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, requests, close: () => server.close() };
}
