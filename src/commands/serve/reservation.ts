import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {durationFlag} from '../../cli/flags.js';
import {mockFlags} from '../../cli/mock-flags.js';
import {serveMock} from '../../services/mocks/serve.js';

export default class ServeReservation extends TacosCommand {
  static override summary = 'Run the reservation mock in the foreground.';
  static override description =
    'reservation.v1.ReservationService and InventoryService over gRPC (RESERVATION_GRPC_PORT, 8011) and HTTP/JSON (RESERVATION_HTTP_PORT, 8010), on a catalogue of events and seats. Holds last 60 s and expire on time.';
  static override examples = [
    '<%= config.bin %> serve reservation',
    '<%= config.bin %> serve reservation --latency 50ms --error-rate 0.1 --hold 10s',
    '<%= config.bin %> serve reservation --catalog my-catalog.json',
    '<%= config.bin %> serve reservation --latency 2s --fault-door grpc',
  ];
  static override flags = {
    ...mockFlags,
    catalog: Flags.string({description: 'Catalogue file (JSON); default: mocks/catalog.json.', helpValue: 'FILE'}),
    hold: durationFlag({description: 'How long a hold lasts (RESERVATION_HOLD_TTL, default 60s).'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(ServeReservation);
    await serveMock('reservation', {
      envName: flags.env,
      httpPort: flags['http-port'],
      grpcPort: flags['grpc-port'],
      latencyMs: flags.latency,
      errorRate: flags['error-rate'],
      faultDoor: flags['fault-door'],
      catalogFile: flags.catalog,
      holdMs: flags.hold,
    });
  }
}
