// Starts CongoDB (the in-memory MongoDB-wire server of @push.rocks/smartmongo) on 127.0.0.1:PORT for the
// history tests; scripts/install-congodb.sh puts this file beside the node_modules it imports from.
import { CongoServer } from './node_modules/@push.rocks/smartmongo/dist_ts/congodb/index.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node congodb.mjs PORT');
  process.exit(2);
}
const server = new CongoServer({ port, host: '127.0.0.1', storage: 'memory' });
await server.start();
