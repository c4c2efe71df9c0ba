#!/usr/bin/env node
// three_tasks.js: libapixo from Node.js through the N-API addon in apixo_addon.c.
// Three tasks with client.generate(); Promise.all waits for the three completions, which the
// addon takes off the client's event queue on the JS thread (queue delivery mode, libuv
// watching the event descriptor). One line per task.
//
//   APIXO_API_KEY=sk-... node three_tasks.js        (APIXO_ADDON: path of apixo.node)
'use strict';
const path = require('path');
const { Client } = require(process.env.APIXO_ADDON || path.join(__dirname, 'build', 'apixo.node'));

const N = 3;

async function main() {
  const options = {};
  if (process.env.APIXO_TIME_SCALE) options.timeScale = Number(process.env.APIXO_TIME_SCALE);
  const client = new Client(options); // key and URL from APIXO_API_KEY / APIXO_BASE_URL
  try {
    const prompt = 'a lighthouse in a storm, oil painting';
    const tasks = await Promise.all(
      Array.from({ length: N }, () => client.generate(prompt, { maxImages: 1 })));
    tasks.forEach((t, i) => console.log(`task ${i} id=${t.id} state=${t.state} urls=${t.urls.length}`));
    console.log(`completed ${tasks.length}/${N}`);
  } finally {
    client.close(); // pending promises (none here) would reject with APIXO_ERR_CLOSED
  }
}

main().catch((err) => {
  console.error(`three_tasks: ${err.message}`);
  process.exitCode = 1;
});
