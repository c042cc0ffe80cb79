// Validates a bundle against provenance/schemas/evidence-bundle.schema.json, the one schema the Python
// side uses (bundled at build time, not copied). A small interpreter for the keywords that schema uses;
// an unknown keyword fails the build's self-check instead of being ignored silently.
import schema from '../../provenance/schemas/evidence-bundle.schema.json';

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs']);
const KEYWORDS = new Set([
  'type', 'const', 'pattern', 'minimum', 'maxItems', 'items', 'required', 'properties',
  'additionalProperties', 'oneOf', '$ref',
]);

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v; // string, boolean, object
}

function resolve(ref) {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(2).split('/').reduce((node, key) => node[key], schema);
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Errors of `value` against `node` as [{path, message}] (empty when valid). */
function check(value, node, path, errors) {
  for (const key of Object.keys(node)) {
    if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) throw new Error(`schema keyword ${key} is not supported`);
  }
  const fail = (message) => errors.push({ path: path.join('/') || '(top level)', message });
  if (node.$ref) check(value, resolve(node.$ref), path, errors);
  if ('const' in node && !equal(value, node.const)) fail(`${JSON.stringify(node.const)} was expected`);
  if (node.type) {
    const t = typeOf(value);
    const ok = t === node.type || (node.type === 'number' && t === 'integer');
    if (!ok) {
      fail(`${JSON.stringify(value)?.slice(0, 60)} is not of type '${node.type}'`);
      return;
    }
  }
  if (node.pattern && typeof value === 'string' && !new RegExp(node.pattern, 'u').test(value)) {
    fail(`'${value.slice(0, 80)}' does not match '${node.pattern}'`);
  }
  if ('minimum' in node && typeof value === 'number' && value < node.minimum) {
    fail(`${value} is less than the minimum of ${node.minimum}`);
  }
  if ('maxItems' in node && Array.isArray(value) && value.length > node.maxItems) fail('is too long');
  if (node.items && Array.isArray(value)) value.forEach((v, i) => check(v, node.items, [...path, i], errors));
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const req of node.required ?? []) if (!(req in value)) fail(`'${req}' is a required property`);
    for (const [k, sub] of Object.entries(node.properties ?? {})) if (k in value) check(value[k], sub, [...path, k], errors);
    if (node.additionalProperties === false) {
      const extra = Object.keys(value).filter((k) => !(k in (node.properties ?? {})));
      if (extra.length) fail(`additional properties are not allowed (${extra.map((k) => `'${k}'`).join(', ')} unexpected)`);
    }
  }
  if (node.oneOf) {
    const matches = node.oneOf.filter((sub) => {
      const e = [];
      check(value, sub, path, e);
      return e.length === 0;
    }).length;
    if (matches !== 1) fail(matches ? 'is valid under more than one of the given schemas' : 'is not valid under any of the given schemas');
  }
  return errors;
}

/** The first schema error of a parsed bundle (sorted by path, as the Python side reports), or null. */
export function schemaError(bundle) {
  const errors = check(bundle, schema, [], []);
  if (!errors.length) return null;
  errors.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return errors[0];
}

export const MEDIA_TYPE = schema.properties.media_type.const;
