// Test peer for the Kinesis sink (run by tests/integration/kinesis_sink_test.cpp):
//   node peer.js serve PORT [DIR]           kinesalite on 127.0.0.1:PORT only (data in DIR if given)
//   node peer.js create PORT STREAM SHARDS  create a stream, wait until ACTIVE
//   node peer.js read PORT STREAM           every record, one JSON line each
//   node peer.js sign JSON                  @smithy/signature-v4's Authorization for a request
//   node peer.js put PORT STREAM FILE        PutRecords of FILE's JSON lines ({key, data}), 500 per
//                                           call, one call at a time (bench/forward's baseline)
'use strict';
const [cmd, ...args] = process.argv.slice(2);

function client(port) {
  const { KinesisClient } = require('@aws-sdk/client-kinesis');
  const { NodeHttpHandler } = require('@smithy/node-http-handler');
  return new KinesisClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    // kinesalite speaks HTTP/1.1 only. A request kinesalite leaves unanswered
    // (it stalls now and then on a loaded machine) times out and is retried,
    // instead of hanging the test that waits for this process.
    requestHandler: new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 20000 }),
    maxAttempts: 5,
  });
}

async function main() {
  if (cmd === 'serve') {
    // kinesalite crashes on a request the client aborts unless someone handles it.
    process.on('uncaughtException', (e) => console.error('peer: ' + e.message));
    // shardLimit: the account's default of 10 shards is too few for bench/forward's streams.
    const server = require('kinesalite')({ createStreamMs: 20, deleteStreamMs: 20, updateStreamMs: 20,
                                           shardLimit: 100, path: args[1] || undefined });
    server.on('connection', (socket) => socket.on('error', () => {}));
    server.listen(Number(args[0]), '127.0.0.1', () => console.log('listening'));
    return;
  }
  const k = require('@aws-sdk/client-kinesis');
  if (cmd === 'create') {
    const c = client(args[0]);
    await c.send(new k.CreateStreamCommand({ StreamName: args[1], ShardCount: Number(args[2]) }));
    for (;;) {
      const d = await c.send(new k.DescribeStreamCommand({ StreamName: args[1] }));
      if (d.StreamDescription.StreamStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    console.log('active');
    return;
  }
  if (cmd === 'read') {
    const c = client(args[0]);
    const shards = (await c.send(new k.ListShardsCommand({ StreamName: args[1] }))).Shards;
    for (const shard of shards) {
      let it = (await c.send(new k.GetShardIteratorCommand({
        StreamName: args[1], ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      for (;;) {
        // Pages of 1,000: a large page keeps kinesalite busy past the request timeout on a loaded machine.
        const r = await c.send(new k.GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
        for (const rec of r.Records) {
          console.log(JSON.stringify({ shard: shard.ShardId, sequence: rec.SequenceNumber, key: rec.PartitionKey,
                                       data: Buffer.from(rec.Data).toString('base64') }));
        }
        if (r.Records.length === 0 || !r.NextShardIterator) break;
        it = r.NextShardIterator;
      }
    }
    return;
  }
  if (cmd === 'sign') {
    const { SignatureV4 } = require('@smithy/signature-v4');
    const { Sha256 } = require('@aws-crypto/sha256-js');
    const q = JSON.parse(args[0]);
    const signer = new SignatureV4({ service: q.service, region: q.region, sha256: Sha256, applyChecksum: false,
      credentials: { accessKeyId: q.accessKeyId, secretAccessKey: q.secretAccessKey } });
    const d = q.amzDate;
    const when = new Date(Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15)));
    const signed = await signer.sign({ method: q.method, protocol: 'https:', hostname: q.host, path: q.path,
      headers: q.headers, body: q.body }, { signingDate: when });
    console.log(signed.headers.authorization);
    return;
  }
  if (cmd === 'put') {
    const c = client(args[0]);
    const lines = require('fs').readFileSync(args[2], 'utf8').split('\n').filter((l) => l.length > 0);
    const records = lines.map((l) => { const r = JSON.parse(l); return { PartitionKey: r.key, Data: Buffer.from(r.data) }; });
    const started = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < records.length; i += 500) {
      let batch = records.slice(i, i + 500);
      while (batch.length > 0) {  // resend only what failed, as the sink does
        const r = await c.send(new k.PutRecordsCommand({ StreamName: args[1], Records: batch }));
        batch = batch.filter((_, j) => r.Records[j].ErrorCode);
      }
    }
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    console.log(JSON.stringify({ records: records.length, seconds: secs, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
    return;
  }
  throw new Error('unknown command ' + cmd);
}
main().catch((e) => { console.error(e); process.exit(1); });
