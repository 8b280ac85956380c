import {mkdtemp, readdir, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {loadEnvironment} from '../config.js';
import {errorMessage, TacosError} from '../errors.js';
import {readGatewayConfig} from '../gateway/config.js';
import {compileContracts} from '../contracts.js';
import {parseHostPort} from '../redis/client.js';
import {hasRedisServer, planStack} from './plan.js';
import {redisAnswers} from './probes.js';
import {stateDir} from '../paths.js';
import {readLiveState} from './state.js';
import {findStackFile, loadStackFile, STACK_FILE_NAMES, type UserService} from './stack-file.js';
import {checkPorts} from './supervisor.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it failed. */
  fix?: string;
}

const MIN_NODE = [20, 5];

/** What `tacos up` needs, each checked: Node, Redis, free ports, the .proto files, the env files. */
export async function doctor(
  envName: string | undefined,
  stackFile?: string,
  projectDir = process.cwd(),
): Promise<Check[]> {
  const checks: Check[] = [];
  const [major, minor] = process.versions.node.split('.').map(Number);
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  checks.push({
    name: 'node',
    ok: nodeOk,
    detail: `v${process.versions.node}`,
    fix: nodeOk ? undefined : `Install Node.js ${MIN_NODE.join('.')} or newer.`,
  });

  const envCheck = await checkEnvFiles(projectDir);
  checks.push(...envCheck);

  let userServices: UserService[] | undefined;
  try {
    const file = findStackFile(projectDir, stackFile);
    userServices = file ? loadStackFile(file) : [];
    checks.push({
      name: 'stack file',
      ok: true,
      detail: file
        ? `${path.relative(projectDir, file) || file}: ${userServices.map((service) => service.name).join(', ')}`
        : `none (${STACK_FILE_NAMES[0]} adds your own services)`,
    });
  } catch (error) {
    checks.push({
      name: 'stack file',
      ok: false,
      detail: errorMessage(error),
      fix: error instanceof TacosError ? error.hint : undefined,
    });
  }

  let env;
  try {
    env = loadEnvironment({envName, projectDir});
    const config = readGatewayConfig(env);
    const {host, port} = parseHostPort(config.redis.address.split(',')[0]);
    const answering = await redisAnswers(host, port, config.redis.password);
    const installed = hasRedisServer();
    checks.push({
      name: 'redis',
      ok: answering || installed,
      detail: answering
        ? `answers at ${config.redis.address} (tacos up reuses it)`
        : installed
          ? `redis-server is installed; tacos up starts it on port ${port}`
          : `nothing answers at ${config.redis.address} and redis-server is not installed`,
      fix:
        answering || installed
          ? undefined
          : 'apt-get install -y redis-server, or point REDIS_ADDRESS at a running Redis.',
    });
  } catch (error) {
    checks.push({
      name: 'redis',
      ok: false,
      detail: errorMessage(error),
      fix: 'Fix the environment first (see the env checks).',
    });
  }

  const {state} = await readLiveState(stateDir(projectDir));
  if (state) {
    checks.push({name: 'ports', ok: true, detail: 'a tacos stack is running and holds them'});
  } else if (env && userServices) {
    try {
      await checkPorts(await planStack({envName, mocks: true, userServices, stateDir: stateDir(projectDir)}, env));
      checks.push({name: 'ports', ok: true, detail: 'every port of the stack is free'});
    } catch (error) {
      checks.push({
        name: 'ports',
        ok: false,
        detail: errorMessage(error),
        fix: 'Stop what holds the port, or set another port in the env file.',
      });
    }
  }

  const dir = await mkdtemp(path.join(tmpdir(), 'tacos-doctor-'));
  try {
    await compileContracts(path.join(dir, 'contracts.binpb'));
    checks.push({name: 'proto', ok: true, detail: 'proto/ compiles'});
  } catch (error) {
    checks.push({
      name: 'proto',
      ok: false,
      detail: errorMessage(error),
      fix: 'Fix the .proto file named; `npx buf lint` shows more.',
    });
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
  return checks;
}

/** Every `.env.<name>` (but .env.example) parses and holds valid values. */
async function checkEnvFiles(projectDir: string): Promise<Check[]> {
  const files = (await readdir(projectDir))
    .filter((file) => /^\.env\.[\w-]+$/.test(file) && file !== '.env.example')
    .sort();
  if (files.length === 0)
    return [{name: 'env files', ok: true, detail: 'none (defaults apply); `tacos env init` creates them'}];
  return files.map((file) => {
    try {
      readGatewayConfig(loadEnvironment({envName: file.slice(5), projectDir, processEnv: {}}));
      return {name: file, ok: true, detail: 'valid'};
    } catch (error) {
      return {name: file, ok: false, detail: errorMessage(error), fix: `Fix the value in ${file}.`};
    }
  });
}
