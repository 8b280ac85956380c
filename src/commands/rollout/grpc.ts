import {confirm} from '@inquirer/prompts';
import * as Flags from '@oclif/core/flags';
import {TacosCommand} from '../../cli/base-command.js';
import {durationFlag} from '../../cli/flags.js';
import {rolloutGateway, rolloutGatewayFlags} from '../../cli/rollout-flags.js';
import {envFileName} from '../../services/env-file.js';
import {switchEnvironments} from '../../services/env/switch.js';
import {TacosError, usageError} from '../../services/errors.js';
import type {WrittenShare} from '../../services/rollout/applied.js';
import {ROLLOUT_FAILED_EXIT, parseSteps, runRollout, type RolloutTick} from '../../services/rollout/rollout.js';

export default class RolloutGrpc extends TacosCommand {
  static override summary = 'Move backend calls to gRPC step by step, watching the running gateway at each step.';
  static override description =
    "Each step sets GRPC_TRAFFIC_PERCENT in the env file (as `tacos env switch grpc --percent` does), waits until the running gateway took it, then watches the gateway for --interval: the gRPC road of each backend is judged against its HTTP road over the calls of the step, with the gateway's thresholds (ROLLOUT_*). A step fails at once when a backend is unhealthy or the gateway rolled back by itself, and at its end when a backend had fewer gRPC calls than needed (--min-calls). On failure the starting share is put back and the exit code is 3. Ctrl-C stops, leaving the share of the last healthy step (exit 130). Production asks for a confirmation once (--yes without a terminal).";
  static override examples = [
    '<%= config.bin %> rollout grpc --env staging --steps 1,5,25,50,100 --interval 1m',
    '<%= config.bin %> rollout grpc --url http://127.0.0.1:8000 --steps 50,100 --interval 10s --json',
  ];
  static override flags = {
    ...rolloutGatewayFlags,
    steps: Flags.string({
      description: 'gRPC shares to go through, in percent, increasing.',
      default: '1,5,25,50,100',
      helpValue: 'P[,P]',
    }),
    interval: durationFlag({description: 'How long each step is watched (such as 1m or 30s).', default: 60_000}),
    'min-calls': Flags.integer({
      description: "gRPC calls per backend a step needs to be judged (default: the gateway's ROLLOUT_MIN_CALLS).",
      min: 0,
    }),
    json: Flags.boolean({description: 'One JSON line per tick, then a result line.'}),
    yes: Flags.boolean({char: 'y', description: 'Roll out production without asking.'}),
  };

  async run(): Promise<void> {
    const {flags} = await this.parse(RolloutGrpc);
    const steps = parseSteps(flags.steps);
    if (flags.interval < 1000) throw usageError(`--interval must be at least 1s.`);
    const envName = flags.env ?? 'local';
    const label = envFileName(envName);
    const switchTo = (share: WrittenShare, dryRun: boolean) =>
      switchEnvironments({
        transport: share.grpcEnabled ? 'grpc' : 'http',
        percent: share.percent,
        projectDir: process.cwd(),
        env: envName,
        dryRun,
        // Production is confirmed once, below, before the first step.
        yes: true,
      });
    // The env switch decides what production is (its name or SERVER_ENVIRONMENT); a dry run reads it.
    const [planned] = await switchTo({grpcEnabled: true, percent: steps[0]}, true);
    if (planned.production && !flags.yes) {
      if (!process.stdin.isTTY || !process.stdout.isTTY)
        throw usageError(
          `${label} is production; a rollout needs a confirmation and there is no terminal to ask on. Nothing was changed.`,
          'Pass --yes to confirm.',
        );
      if (
        !(await confirm({
          message: `Roll out gRPC on production (${label}) through ${steps.join(', ')} %?`,
          default: false,
        }))
      )
        throw new TacosError('Not confirmed: nothing was changed.', {code: 'CANCELLED'});
    }
    const gateway = await rolloutGateway({url: flags.url, env: envName});
    const setShare = async (share: WrittenShare) => (await switchTo(share, false))[0].status === 'changed';
    const abort = new AbortController();
    const onInterrupt = () => abort.abort();
    process.once('SIGINT', onInterrupt);
    const printer = new TickPrinter(flags.json, Boolean(process.stdout.isTTY) && !flags.json);
    try {
      const result = await runRollout({
        gateway,
        label,
        steps,
        intervalMs: flags.interval,
        minCalls: flags['min-calls'],
        setShare,
        signal: abort.signal,
        onTick: (tick) => printer.tick(tick),
      });
      printer.end();
      if (flags.json) this.log(JSON.stringify({type: 'result', ...result}));
      // A failure's message is printed once, as the error (stderr, exit 3).
      else if (result.outcome !== 'failed') this.log(result.message);
      if (result.outcome === 'failed')
        throw new TacosError(result.message, {exitCode: ROLLOUT_FAILED_EXIT, code: 'ROLLOUT_FAILED'});
      if (result.outcome === 'interrupted') this.exit(130);
    } finally {
      process.off('SIGINT', onInterrupt);
    }
  }
}

const pct = (rate: number) => `${(rate * 100).toFixed(1)}%`;
const ms = (value: number) => `${Math.round(value)}ms`;

/** Ticks as JSON lines, as a table redrawn in place on a terminal, or a line per finished step. */
class TickPrinter {
  private drawn = 0;
  constructor(
    private readonly json: boolean,
    private readonly redraw: boolean,
  ) {}

  tick(tick: RolloutTick): void {
    if (this.json) {
      process.stdout.write(`${JSON.stringify({type: 'tick', ...tick})}\n`);
      return;
    }
    const lines = [
      `step ${tick.step} at ${tick.percent}% (${tick.elapsedSeconds.toFixed(0)}s): ${tick.verdict.outcome}`,
    ];
    for (const [name, backend] of Object.entries(tick.backends)) {
      for (const road of ['grpc', 'http'] as const) {
        const figures = backend[road];
        lines.push(
          `  ${(road === 'grpc' ? name : '').padEnd(12)} ${road.padEnd(5)} ${String(figures.calls).padEnd(7)} errors ${pct(figures.errorRate).padEnd(7)} p50 ${ms(figures.p50Ms).padEnd(7)} p99 ${ms(figures.p99Ms)}`,
        );
      }
    }
    if (this.redraw) {
      if (this.drawn) process.stdout.write(`\u001B[${this.drawn}A\u001B[0J`);
      process.stdout.write(`${lines.join('\n')}\n`);
      // A finished step stays on screen; the next step draws below it.
      this.drawn = tick.verdict.outcome === 'watching' ? lines.length : 0;
    } else if (tick.verdict.outcome !== 'watching') {
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  }

  end(): void {
    this.drawn = 0;
  }
}
