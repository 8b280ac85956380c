// The baseline of bench:call: the same call a developer would write by hand, from the static .proto.
import {credentials, loadPackageDefinition} from '@grpc/grpc-js';
import {loadSync} from '@grpc/proto-loader';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const definition = loadSync('proto/reservation/v1/reservation.proto', {
  includeDirs: [root],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const {reservation} = loadPackageDefinition(definition);
const client = new reservation.v1.ReservationService(process.argv[2], credentials.createInsecure());
client.ListReservations({user_id: 'bench'}, (error, response) => {
  if (error) {
    console.error(error.message);
    process.exit(1);
  }
  console.log(JSON.stringify(response));
  client.close();
});
