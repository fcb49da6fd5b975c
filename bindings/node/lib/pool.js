'use strict';
// The threads that make the library's blocking calls (lib/worker.js), so that the main thread's
// event loop never waits for a model to load or a token to come. A call takes an idle thread or
// starts one; calls of different sessions run side by side, each on its own thread.
//
// Why threads of our own rather than koffi's `fn.async`: the library's error message
// (mm_last_error) belongs to the thread that made the failing call, and koffi's async calls give
// no way to read it there; and a callback of an async call runs on the main thread while the
// library thread waits for it, so every streamed token would wait for the event loop. Here the
// call, its callbacks and the error message stay on one thread, and callbacks only post.

const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { STOP, CANCEL, COUNT } = require('./flags');

/** Idle threads kept for later calls; more are ended when their call returns. */
const MAX_IDLE = 4;

class Pool {
  #idle = [];
  #nextId = 1;

  /**
   * Runs one job (see lib/worker.js) on a pool thread; `onEvent(field, args)` receives what its
   * callbacks were called with. Returns { done, stop, cancel }: `done` resolves to the worker's answer; `stop`
   * makes the job's bool callbacks return false; `cancel` makes a job that has not yet reached
   * the library give MM_ERR_CANCELLED without calling it.
   */
  run(job, onEvent = () => {}) {
    return this.#runOn(this.#idle.pop() || this.#spawn(), job, onEvent);
  }

  /**
   * Runs a full garbage collection in every idle pool thread, when the process runs with
   * --expose-gc (pool threads inherit it): tests that measure memory use it, so that what they
   * see is what is held, not garbage a collection would free.
   */
  async collectGarbage() {
    const idle = this.#idle.splice(0);
    await Promise.all(idle.map((worker) => this.#runOn(worker, { collectGarbage: true }).done));
  }

  #runOn(worker, job, onEvent = () => {}) {
    const id = this.#nextId++;
    worker.flags.fill(0);
    worker.ref();
    const done = new Promise((resolve, reject) => {
      worker.current = { id, onEvent, resolve, reject };
    });
    const { transfer = [], ...message } = job;
    worker.postMessage({ ...message, id }, transfer);
    return { done, stop: () => Atomics.store(worker.flags, STOP, 1), cancel: () => Atomics.store(worker.flags, CANCEL, 1) };
  }

  #spawn() {
    const control = new SharedArrayBuffer(COUNT * Int32Array.BYTES_PER_ELEMENT);
    // A pool thread runs little JavaScript (it marshals arguments and posts results): a young
    // generation of 1 MB instead of V8's default of up to 16 MB keeps its heap small.
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: { control }, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    worker.flags = new Int32Array(control);
    worker.on('message', (msg) => this.#receive(worker, msg));
    worker.on('error', (err) => this.#fail(worker, err));
    worker.on('exit', (code) => this.#fail(worker, new Error(`mm-session: a pool thread exited (code ${code})`)));
    return worker;
  }

  #receive(worker, msg) {
    const current = worker.current;
    if (!current || msg.id !== current.id) return;
    if (msg.events) {
      for (const [event, args] of msg.events) current.onEvent(event, args);
      return;
    }
    worker.current = null;
    worker.unref();
    if (this.#idle.length < MAX_IDLE) this.#idle.push(worker);
    else worker.terminate();
    if (msg.thrown) current.reject(Object.assign(new Error(msg.thrown.message), { name: msg.thrown.name }));
    else current.resolve(msg);
  }

  #fail(worker, err) {
    this.#idle = this.#idle.filter((w) => w !== worker);
    const current = worker.current;
    worker.current = null;
    if (current) current.reject(err);
  }
}

module.exports = { pool: new Pool() };
