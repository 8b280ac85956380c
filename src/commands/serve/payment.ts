import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {durationFlag} from '../../cli/flags.js';
import {mockFlags} from '../../cli/mock-flags.js';
import {PAYMENT_SCENARIOS, serveMock} from '../../services/mocks/serve.js';
import type {PaymentScenarioName} from '../../services/mocks/payment/messages.js';

export default class ServePayment extends TacosCommand {
  static override summary = 'Run the payment mock in the foreground.';
  static override description =
    'payment.v1.PaymentService over gRPC (PAYMENT_GRPC_PORT, 8031) and HTTP/JSON (PAYMENT_HTTP_PORT, 8030). Scenarios: APPROVE, FAIL, DELAY, RANDOM (seeded), TIMEOUT; signed webhooks (X-Webhook-Signature: sha256=HMAC of the body with WEBHOOK_SECRET).';
  static override examples = [
    '<%= config.bin %> serve payment',
    '<%= config.bin %> serve payment --scenario FAIL',
    '<%= config.bin %> serve payment --scenario RANDOM --seed 7 --latency 2s',
  ];
  static override flags = {
    ...mockFlags,
    scenario: Flags.string({
      description: 'Scenario for intents that name none (PAYMENT_SCENARIO, default APPROVE).',
      options: [...PAYMENT_SCENARIOS],
    }),
    delay: durationFlag({description: 'How long DELAY waits before approving (PAYMENT_DELAY, default 2s).'}),
    seed: Flags.integer({description: 'Seed of RANDOM, for repeatable runs (PAYMENT_RANDOM_SEED, default 42).'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(ServePayment);
    await serveMock('payment', {
      envName: flags.env,
      httpPort: flags['http-port'],
      grpcPort: flags['grpc-port'],
      latencyMs: flags.latency,
      errorRate: flags['error-rate'],
      faultDoor: flags['fault-door'],
      scenario: flags.scenario as PaymentScenarioName | undefined,
      delayMs: flags.delay,
      seed: flags.seed,
    });
  }
}
