import type {DefaultGateway} from '../grpc-client/target.js';

/**
 * The gateway of an environment, as `tacos call`, `list` and `describe` reach it when given no
 * address: 127.0.0.1:GRPC_PORT, and whether the running stack serves gRPC at all. The environment
 * and the stack's state are read only when asked (they cost start-up time).
 */
export function defaultGateway(envName: string | undefined): DefaultGateway {
  return {
    async address() {
      const [{loadEnvironment}, {readGatewayConfig}] = await Promise.all([
        import('../config.js'),
        import('../gateway/config.js'),
      ]);
      return `127.0.0.1:${readGatewayConfig(loadEnvironment({envName})).grpcPort}`;
    },
    async stackWithoutGrpc() {
      const [{isSameProcess, readState}, {stateDir}] = await Promise.all([import('./state.js'), import('../paths.js')]);
      const state = await readState(stateDir());
      const gateway = state?.services.find((service) => service.name === 'gateway');
      // A stack file's gateway is the user's own: we cannot tell whether it serves gRPC.
      if (!state || !gateway || gateway.check || gateway.urls.some((url) => url.startsWith('grpc://')))
        return undefined;
      return (await isSameProcess(state.supervisor)) ? state.env : undefined;
    },
  };
}
