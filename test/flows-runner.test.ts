import test from 'ava';
import { RunningFlow } from '../src/flows/runner.js';
import type { FlowSpec, PodSpec } from '../src/flows/spec.js';
import { InputError, SkipDoc } from '../src/errors.js';
import type { ExecutorClass, FlowDoc } from '../src/executors/types.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pod(name: string, executor: ExecutorClass, needs: string[] = []): PodSpec {
  return { name, uses: name, executor, needs, params: {}, replicas: 1, line: 0 };
}

function flow(prefetch: number, pods: PodSpec[]): FlowSpec {
  return { file: '/test/flow.yml', name: 'test', prefetch, pods };
}

test('documents come out in input order, at most `prefetch` in flight, branches run side by side and join waits for both', async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const events: string[] = [];
  class Source {
    process(doc: FlowDoc) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      doc.tags.path = [];
    }
  }
  // Later docs finish sooner: the output order must still be the input order.
  class Slow {
    async process(doc: FlowDoc) {
      await sleep(5 * (10 - doc.seq));
      (doc.tags.path as string[]).push('slow');
    }
  }
  class Fast {
    process(doc: FlowDoc) {
      (doc.tags.path as string[]).push('fast');
    }
  }
  class Join {
    process(doc: FlowDoc) {
      events.push(`join ${doc.seq}: ${(doc.tags.path as string[]).sort().join('+')}`);
      inFlight--;
    }
  }
  const running = await RunningFlow.open(flow(3, [pod('source', Source), pod('slow', Slow, ['source']), pod('fast', Fast, ['source']), pod('join', Join, ['slow', 'fast'])]), { mode: 'index' });
  const order: number[] = [];
  await running.runAll(
    Array.from({ length: 10 }, (_, i) => ({ uri: `doc${i}` })),
    ({ doc, skipped }) => {
      t.is(skipped, undefined);
      order.push(doc.seq);
    },
  );
  t.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.true(maxInFlight <= 3, `at most prefetch docs in flight, saw ${maxInFlight}`);
  t.true(maxInFlight > 1, 'docs overlap');
  t.is(events.length, 10);
  t.true(
    events.every((event) => event.endsWith('fast+slow')),
    'join ran after both branches',
  );
  t.true(running.podTime.get('slow')! > 0);
  await running.close();
});

test('a SkipDoc or InputError drops the document with its reason; other errors stop the run', async (t) => {
  class Picky {
    process(doc: FlowDoc) {
      if (doc.uri === 'bad') throw new SkipDoc(doc.uri, 'bad by name');
      if (doc.uri === 'broken') throw new InputError(doc.uri, 'truncated or corrupt JPEG');
    }
  }
  const running = await RunningFlow.open(flow(2, [pod('picky', Picky)]), { mode: 'index' });
  const outcomes: string[] = [];
  await running.runAll([{ uri: 'ok' }, { uri: 'bad' }, { uri: 'broken' }, { uri: 'ok2' }], ({ doc, skipped }) => {
    outcomes.push(skipped ? `${doc.uri}: ${skipped.reason}` : doc.uri);
  });
  t.deepEqual(outcomes, ['ok', 'bad: bad by name', 'broken: truncated or corrupt JPEG', 'ok2']);

  let closed = false;
  class Crash {
    process(doc: FlowDoc) {
      if (doc.seq === 1) throw new Error('executor bug');
    }
    close() {
      closed = true;
    }
  }
  const crashing = await RunningFlow.open(flow(2, [pod('crash', Crash)]), { mode: 'index' });
  await t.throwsAsync(
    crashing.runAll([{ uri: 'a' }, { uri: 'b' }, { uri: 'c' }], () => {}),
    { message: 'executor bug' },
  );
  await crashing.close();
  t.true(closed);
});

test('open() failures close the executors already opened', async (t) => {
  const log: string[] = [];
  class First {
    open() {
      log.push('open first');
    }
    process() {}
    close() {
      log.push('close first');
    }
  }
  class Second {
    open(): void {
      throw new Error('no model');
    }
    process() {}
  }
  await t.throwsAsync(RunningFlow.open(flow(1, [pod('first', First), pod('second', Second, ['first'])]), { mode: 'query' }), { message: 'no model' });
  t.deepEqual(log, ['open first', 'close first']);
});

test('an aborted signal stops a document between pods: no pod starts after it, the run rejects with its reason', async (t) => {
  const ran: string[] = [];
  const controller = new AbortController();
  class First {
    async process() {
      ran.push('first');
      controller.abort(new Error('search timed out'));
      await sleep(1);
    }
  }
  class Second {
    process() {
      ran.push('second');
    }
  }
  const running = await RunningFlow.open(flow(1, [pod('first', First), pod('second', Second, ['first'])]), { mode: 'query' });
  await t.throwsAsync(running.run({ uri: 'q', signal: controller.signal }), { message: 'search timed out' });
  t.deepEqual(ran, ['first']);
  await running.close();
});

test("an image InputError keeps its code through the flow's skip", async (t) => {
  class Refuse {
    process(doc: FlowDoc) {
      throw new InputError(doc.uri, 'extreme aspect ratio', 'image_limit_exceeded');
    }
  }
  const running = await RunningFlow.open(flow(1, [pod('refuse', Refuse)]), { mode: 'query' });
  const { skipped } = await running.run({ uri: 'sliver.png' });
  t.is(skipped?.reason, 'extreme aspect ratio');
  t.is((skipped?.cause as InputError).code, 'image_limit_exceeded');
  await running.close();
});
