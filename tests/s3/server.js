// server.js - the S3-compatible test server of the archive tests: @20minutes/s3rver
// (checks SigV4 signatures) on 127.0.0.1, data under DIR, one key pair.
//   node server.js DIR PORT ACCESS_KEY SECRET_KEY [BUCKET...]
// Prints "ready PORT" on stdout once listening; stops on SIGTERM.
'use strict';
const S3rver = require('@20minutes/s3rver');
const { DUMMY_ACCOUNT } = require('@20minutes/s3rver/lib/models/account');

const [dir, port, key, secret, ...buckets] = process.argv.slice(2);
DUMMY_ACCOUNT.createKeyPair(key, secret);
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory: dir,
  silent: true,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});
server.run().then((addr) => {
  process.stdout.write(`ready ${addr.port}\n`);
}, (err) => {
  process.stderr.write(`s3rver: ${err.stack || err}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => server.close().then(() => process.exit(0), () => process.exit(0)));
