import {watch, type FSWatcher} from 'node:fs';
import path from 'node:path';
import {loadEnvironment, type Environment} from '../../config.js';
import {envFileName} from '../../env-file.js';
import {errorMessage} from '../../errors.js';
import type {Logger} from '../../logging.js';
import {readGatewayConfig} from '../config.js';
import {LIVE_VARIABLES, readRolloutSettings, type RolloutSettings} from './settings.js';

/** Changes of the env file closer than this make one reload (an editor writes in several steps). */
const DEBOUNCE_MS = 100;

/** Where the gateway's environment came from: the env file re-read on a reload, and the process env over it. */
export interface EnvSource {
  projectDir: string;
  envName: string;
  /** Named with --env: the file must exist (the default `.env.local` may not). */
  named: boolean;
  processEnv: Environment;
}

/** The settings block of GET /api/v1/rollout. */
export interface SettingsStatus {
  env_file: string | null;
  grpc_enabled: boolean;
  grpc_traffic_percent: number;
  generation: number;
  loaded_at: string;
  fixed_by_process_env: string[];
  restart_needed: string[];
  last_error: string | null;
}

const isLive = (name: string) => (LIVE_VARIABLES as readonly string[]).includes(name);

/**
 * The gateway's live settings (settings.ts): read at start, re-read from the env file on `reload`
 * (a change of the file, SIGHUP). A refused file keeps the old settings; the variables that need a
 * restart are named, not applied.
 */
export class LiveSettings {
  private generation = 1;
  private loadedAt = new Date();
  private restartNeeded: string[] = [];
  private lastError: string | null = null;
  private readonly listeners: Array<(settings: RolloutSettings) => void> = [];
  /** The environment of the last successful read: what `changed` is told from. */
  private lastEnv: Environment;

  private constructor(
    private currentSettings: RolloutSettings,
    /** The environment the process started with: what a change needing a restart is told from. */
    private readonly started: Environment,
    private readonly source: EnvSource | undefined,
    private readonly logger: Logger,
  ) {
    this.lastEnv = started;
  }

  /** The settings of `env`, the environment the gateway started with, read from `source`. */
  static started(source: EnvSource, env: Environment, logger: Logger): LiveSettings {
    return new LiveSettings(readRolloutSettings(env), env, source, logger);
  }

  /** Settings with no env file behind them (a gateway started in process): a reload keeps them. */
  static fixed(settings: RolloutSettings, logger: Logger): LiveSettings {
    return new LiveSettings(settings, {}, undefined, logger);
  }

  get settings(): RolloutSettings {
    return this.currentSettings;
  }

  /** Called with the new settings after each successful reload. */
  onApply(listener: (settings: RolloutSettings) => void): void {
    this.listeners.push(listener);
  }

  /** Re-reads the env file; logs what changed. Returns false when the file was refused. */
  reload(): boolean {
    if (!this.source) return true;
    let env: Environment;
    let settings: RolloutSettings;
    try {
      env = readEnvironment(this.source);
      // The whole file must still be valid: the next restart reads it all.
      readGatewayConfig(env);
      settings = readRolloutSettings(env);
    } catch (error) {
      this.lastError = errorMessage(error);
      this.logger.error({err: this.lastError}, 'settings not reloaded: the old settings stay');
      return false;
    }
    const changed = LIVE_VARIABLES.filter((name) => env[name] !== this.lastEnv[name]);
    const restartNeeded = Object.keys({...this.started, ...env}).filter(
      (name) => (!isLive(name) || name === 'GRPC_ENABLED') && env[name] !== this.started[name],
    );
    const newlyNeeded = restartNeeded.filter((name) => !this.restartNeeded.includes(name));
    this.lastEnv = env;
    this.currentSettings = settings;
    this.generation++;
    this.loadedAt = new Date();
    this.lastError = null;
    this.restartNeeded = restartNeeded;
    for (const listener of this.listeners) listener(settings);
    const fixed = this.fixedByProcessEnv();
    this.logger.info(
      {
        generation: this.generation,
        changed: Object.fromEntries(changed.map((name) => [name, env[name] ?? null])),
        // The file cannot change these: say so where an operator looks after editing it.
        ...(fixed.length > 0 ? {fixed_by_process_env: fixed} : {}),
      },
      'settings reloaded',
    );
    if (newlyNeeded.length > 0) {
      this.logger.warn({restart_needed: restartNeeded}, 'settings changed that apply only after a restart');
    }
    return true;
  }

  /**
   * Reloads when the env file changes (its directory is watched: the file may not exist yet, and
   * editors replace it) and on SIGHUP, which then no longer stops the process. Returns the stop.
   */
  watch(onChange: () => void = () => void this.reload()): () => void {
    return watchEnvFile(this.source, onChange);
  }

  status(): SettingsStatus {
    return {
      env_file: this.source ? envFileName(this.source.envName) : null,
      grpc_enabled: this.currentSettings.grpcEnabled,
      grpc_traffic_percent: this.currentSettings.grpcTrafficPercent,
      generation: this.generation,
      loaded_at: this.loadedAt.toISOString(),
      fixed_by_process_env: this.fixedByProcessEnv(),
      restart_needed: this.restartNeeded,
      last_error: this.lastError,
    };
  }

  /** The live variables the process environment sets: it wins over the file. */
  private fixedByProcessEnv(): string[] {
    const processEnv = this.source?.processEnv ?? {};
    return LIVE_VARIABLES.filter((name) => processEnv[name]?.trim());
  }

  get settingsGeneration(): number {
    return this.generation;
  }
}

function readEnvironment(source: EnvSource): Environment {
  return loadEnvironment({
    envName: source.named ? source.envName : undefined,
    projectDir: source.projectDir,
    processEnv: source.processEnv,
  });
}

/**
 * Calls `onChange` (debounced) when `source`'s env file changes, and on SIGHUP. Without a source
 * only SIGHUP is taken, so that it never kills the process. Returns the stop; safe to call twice.
 */
export function watchEnvFile(source: EnvSource | undefined, onChange: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, DEBOUNCE_MS);
  };
  let watcher: FSWatcher | undefined;
  if (source) {
    const file = envFileName(source.envName);
    watcher = watch(path.resolve(source.projectDir), (_event, name) => {
      if (name === null || name === file) soon();
    });
    // A directory gone (a temp project removed) stops the watching, not the gateway.
    watcher.on('error', () => watcher?.close());
    watcher.unref();
  }
  const onHangup = () => onChange();
  process.on('SIGHUP', onHangup);
  ignoreHangups();
  return () => {
    clearTimeout(timer);
    watcher?.close();
    process.off('SIGHUP', onHangup);
  };
}

const ignore = () => undefined;

/** SIGHUP's default stops node: a gateway process (a worker, one shutting down) takes it and does nothing. */
export function ignoreHangups(): void {
  if (!process.listeners('SIGHUP').includes(ignore)) process.on('SIGHUP', ignore);
}
