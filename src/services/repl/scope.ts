import type {DescEnum, DescMessage, DescMethod, DescService} from '@bufbuild/protobuf';
import {closestNames} from '../closest-names.js';
import {usageError} from '../errors.js';
import {findMethod} from '../grpc-client/invoke.js';
import type {Schema} from '../grpc-client/schema.js';

/**
 * The package and service a user picked, as names: the schema is replaced when reloaded, so the
 * descriptors are looked up again each time.
 */
export interface Selection {
  package?: string;
  service?: string;
}

const packageOf = (service: DescService) => service.file.proto.package ?? '';

/** Packages that hold services, sorted: what `package` selects and `show package` lists. */
export function packagesOf(schema: Schema): string[] {
  return [...new Set(schema.services.map(packageOf))].filter(Boolean).sort();
}

/** The services of the selected package (all of them when none is selected). */
export function servicesIn(schema: Schema, selection: Selection): DescService[] {
  return selection.package === undefined
    ? schema.services
    : schema.services.filter((service) => packageOf(service) === selection.package);
}

/** The selected service's descriptor, when it is still in the schema. */
export function selectedService(schema: Schema, selection: Selection): DescService | undefined {
  return schema.services.find((service) => service.typeName === selection.service);
}

/**
 * What starting selects: the only package, then its only service (Evans does so). gRPC's own
 * packages (grpc.health.v1, grpc.reflection.*) do not count: a server with health checks still has
 * one package of its own.
 */
export function initialSelection(schema: Schema, wanted: {package?: string; service?: string}): Selection {
  const packages = packagesOf(schema).filter((name) => !name.startsWith('grpc.'));
  let selection: Selection = {};
  if (wanted.package !== undefined) selection = selectPackage(schema, wanted.package);
  else if (packages.length === 1) selection = selectPackage(schema, packages[0]);
  if (wanted.service !== undefined) selection = selectService(schema, selection, wanted.service);
  return selection;
}

export function selectPackage(schema: Schema, name: string): Selection {
  const packages = packagesOf(schema);
  if (!packages.includes(name)) {
    const closest = closestNames(packages, name);
    throw usageError(
      `No package "${name}" on this server.`,
      closest.length ? `Did you mean: ${closest.join(', ')}?` : `Packages: ${packages.join(', ') || 'none'}.`,
    );
  }
  const services = servicesIn(schema, {package: name});
  return {package: name, service: services.length === 1 ? services[0].typeName : undefined};
}

/** `service NAME`: a service of the selected package, or a full (or unique) name that selects its package too. */
export function selectService(schema: Schema, selection: Selection, name: string): Selection {
  const inPackage = servicesIn(schema, selection);
  const found =
    inPackage.find((service) => service.name === name || service.typeName === name) ??
    uniqueBySuffix(schema.services, name);
  if (!found) {
    const names = inPackage.map((service) => service.name);
    const closest = closestNames(names, name);
    throw usageError(
      `No service "${name}"${selection.package ? ` in package ${selection.package}` : ''}.`,
      closest.length ? `Did you mean: ${closest.join(', ')}?` : `Services: ${names.join(', ') || 'none'}.`,
    );
  }
  return {package: packageOf(found) || undefined, service: found.typeName};
}

function uniqueBySuffix(services: DescService[], name: string): DescService | undefined {
  const matches = services.filter((service) => service.typeName === name || service.typeName.endsWith(`.${name}`));
  return matches.length === 1 ? matches[0] : undefined;
}

/**
 * The names a short name may stand for, nearest first: in the selected service, in the selected
 * package, then as typed (a full name, or one unique anywhere).
 */
export function scopedNames(selection: Selection, name: string): string[] {
  const names = [];
  if (selection.service && !name.includes('.')) names.push(`${selection.service}.${name}`);
  if (selection.package && !name.startsWith(`${selection.package}.`)) names.push(`${selection.package}.${name}`);
  names.push(name);
  return names;
}

/** The method `name` means where the user stands: a method of the selected service first. */
export function resolveMethod(schema: Schema, selection: Selection, name: string): DescMethod {
  const all = schema.services.flatMap((service) => service.methods);
  for (const candidate of scopedNames(selection, name.replace('/', '.'))) {
    const found = all.find((method) => `${method.parent.typeName}.${method.name}` === candidate);
    if (found) return found;
  }
  return findMethod(schema, name);
}

/** Messages and enums of the selected package (all when none is selected), map entries left out. */
export function typesIn(schema: Schema, selection: Selection): Array<DescMessage | DescEnum> {
  const types: Array<DescMessage | DescEnum> = [];
  for (const desc of schema.registry) {
    if (desc.kind !== 'message' && desc.kind !== 'enum') continue;
    if (desc.kind === 'message' && desc.proto.options?.mapEntry) continue;
    if (selection.package === undefined || desc.file.proto.package === selection.package) types.push(desc);
  }
  return types.sort((a, b) => a.typeName.localeCompare(b.typeName));
}

/** A full name as the user would type it where they stand: without the selected package. */
export function shortName(selection: Selection, typeName: string): string {
  return selection.package && typeName.startsWith(`${selection.package}.`)
    ? typeName.slice(selection.package.length + 1)
    : typeName;
}

/**
 * `tacos call --package P --service S M` (Evans's CLI mode) as the one name `tacos call` resolves:
 * P.S.M; S may be short or full. A package alone cannot narrow a method name before the schema is
 * read, so it needs --service.
 */
export function methodNameIn(selection: Selection, method: string): string {
  if (!selection.service) {
    if (selection.package !== undefined)
      throw usageError('--package needs --service too.', `e.g. --package ${selection.package} --service QueueService`);
    return method;
  }
  const service =
    selection.package && !selection.service.startsWith(`${selection.package}.`)
      ? `${selection.package}.${selection.service}`
      : selection.service;
  return `${service}.${method}`;
}
