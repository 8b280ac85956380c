import {execa} from 'execa';
import {Redis} from 'ioredis';
import {disposeRedis, freePort, startRedis, type RedisProcess} from './redis.js';

export interface RedisCluster {
  nodes: RedisProcess[];
  /** A plain (non-cluster) connection to each node, to look at what it holds. */
  direct: Redis[];
  /** The seed list of REDIS_ADDRESS. */
  seeds: string;
  close(): Promise<void>;
}

/** A real three-node Redis Cluster (no replicas) on free ports, once every node says cluster_state:ok. */
export async function startRedisCluster(nodeTimeoutMs = 5000): Promise<RedisCluster> {
  const nodes: RedisProcess[] = [];
  const direct: Redis[] = [];
  const close = async () => {
    for (const client of direct) client.disconnect();
    await Promise.allSettled(nodes.map((node) => disposeRedis(node)));
  };
  try {
    for (let index = 0; index < 3; index++) {
      nodes.push(
        await startRedis([
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          // Not the default bus port (the node's + 10000): that lands in the kernel's ephemeral range,
          // where another process's outgoing connection may hold it.
          '--cluster-port',
          String(await freePort()),
        ]),
      );
    }
    for (const node of nodes) {
      const client = new Redis({host: '127.0.0.1', port: node.port, maxRetriesPerRequest: 1});
      client.on('error', () => undefined);
      direct.push(client);
    }
    await execa(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', '0', '--cluster-yes'],
      {timeout: 30_000},
    );
    const deadline = Date.now() + 20_000;
    for (const client of direct) {
      while (!String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok within 20 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  return {nodes, direct, seeds: nodes.map((node) => node.address).join(','), close};
}
