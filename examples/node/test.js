// test.js: the addon's Promise API against the simulator (node --test test.js). Needs
// APIXO_BASE_URL, APIXO_API_KEY and APIXO_TIME_SCALE as Tests/hosts/run.py sets them, and
// APIXO_ADDON (or build/apixo.node beside this file).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const apixo = require(process.env.APIXO_ADDON || path.join(__dirname, 'build', 'apixo.node'));

const timeScale = Number(process.env.APIXO_TIME_SCALE || '0.01');
const prompt = 'a lighthouse in a storm, oil painting';

function withClient(fn) {
  return async () => {
    const client = new apixo.Client({ timeScale });
    try {
      await fn(client);
    } finally {
      client.close();
    }
  };
}

test('version is the library version', () => {
  assert.match(apixo.version(), /^\d+\.\d+\.\d+$/);
});

test('three generate() calls resolve with three distinct successful tasks', withClient(async (client) => {
  const tasks = await Promise.all([0, 1, 2].map(() => client.generate(prompt, { maxImages: 1 })));
  assert.equal(tasks.length, 3);
  for (const t of tasks) {
    assert.equal(t.state, 'success');
    assert.ok(t.urls.length >= 1);
    assert.match(t.urls[0], /^https?:\/\//);
    assert.equal(t.model, 'seedream-5-0');
    assert.equal(t.failCode, null);
  }
  assert.equal(new Set(tasks.map((t) => t.id)).size, 3);
  assert.equal(client.pending, 0);
}));

test('submit() resolves with the outcome, a tag comes back', withClient(async (client) => {
  const r = await client.submit(prompt, { maxImages: 2, tag: 'job-7', aspectRatio: '16:9' });
  assert.equal(r.code, 0);
  assert.equal(r.codeName, 'APIXO_OK');
  assert.equal(r.message, '');
  assert.equal(r.task.state, 'success');
  assert.equal(r.task.tag, 'job-7');
  assert.ok(r.task.urls.length >= 1 && r.task.urls.length <= 2);
}));

test('a failed task: generate() rejects with its code and task, submit() resolves with it', withClient(async (client) => {
  const failing = 'a cat [fail:CONTENT_VIOLATION]';
  await assert.rejects(client.generate(failing, { maxImages: 1 }), (err) => {
    assert.equal(err.code, 'APIXO_ERR_TASK_FAILED');
    assert.equal(err.task.state, 'failed');
    assert.equal(err.task.failCode, 'CONTENT_VIOLATION');
    return true;
  });
  const r = await client.submit(failing, { maxImages: 1 });
  assert.equal(r.codeName, 'APIXO_ERR_TASK_FAILED');
  assert.equal(r.task.failCode, 'CONTENT_VIOLATION');
}));

test('invalid requests reject at once with APIXO_ERR_INVALID_ARGUMENT; wrong types throw', withClient(async (client) => {
  await assert.rejects(client.generate(prompt, { maxImages: 99 }),
    (err) => err.code === 'APIXO_ERR_INVALID_ARGUMENT' && /max_images|maxImages/.test(err.message));
  await assert.rejects(client.generate('', { maxImages: 1 }), { code: 'APIXO_ERR_INVALID_ARGUMENT' });
  await assert.rejects(client.generate(prompt, { maxImages: 1, resolution: '9K' }), { code: 'APIXO_ERR_INVALID_ARGUMENT' });
  assert.throws(() => client.generate(42), TypeError);
  assert.throws(() => client.generate(prompt, { maxImages: 'two' }), TypeError);
  assert.throws(() => client.generate(prompt, 'opts'), TypeError);
  assert.equal(client.pending, 0);
}));

test('close() rejects what is pending with APIXO_ERR_CLOSED, later calls too', async () => {
  const client = new apixo.Client({ timeScale });
  const p = client.generate(prompt, { maxImages: 1 });
  assert.equal(client.pending, 1);
  client.close();
  await assert.rejects(p, { code: 'APIXO_ERR_CLOSED' });
  await assert.rejects(client.generate(prompt, { maxImages: 1 }), { code: 'APIXO_ERR_CLOSED' });
  client.close(); // twice is harmless
  assert.equal(client.pending, 0);
});

test('a bad option throws with the library code', () => {
  assert.throws(() => new apixo.Client({ timeScale: -1 }), { code: 'APIXO_ERR_INVALID_ARGUMENT' });
  assert.throws(() => new apixo.Client({ baseUrl: 'ftp://x' }), { code: 'APIXO_ERR_INVALID_ARGUMENT' });
  assert.throws(() => new apixo.Client({ apiKey: 7 }), TypeError);
  assert.throws(() => apixo.Client({}), TypeError);
});

test('a wrong key: the promise rejects with APIXO_ERR_UNAUTHORIZED, nothing hangs', async () => {
  const client = new apixo.Client({ timeScale, apiKey: 'sk-wrong' });
  try {
    await assert.rejects(client.generate(prompt, { maxImages: 1 }), { code: 'APIXO_ERR_UNAUTHORIZED' });
  } finally {
    client.close();
  }
});

test('a closed client collected later does not stop a new one on the same descriptor number', { timeout: 30000 }, async () => {
  let old = new apixo.Client({ timeScale });
  const p = old.generate(prompt, { maxImages: 1 }); // starts watching its descriptor
  old.close();
  await assert.rejects(p, { code: 'APIXO_ERR_CLOSED' });
  const client = new apixo.Client({ timeScale }); // likely given the number just freed
  try {
    const pending = client.generate(prompt, { maxImages: 1 }); // watching that number now
    old = null;
    require('v8').setFlagsFromString('--expose-gc');
    const gc = require('vm').runInNewContext('gc');
    for (let i = 0; i < 3; i++) { // collect `old` and let its finalizer run
      gc();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const t = await pending;
    assert.equal(t.state, 'success');
  } finally {
    client.close();
  }
});
