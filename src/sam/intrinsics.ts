/**
 * Resolves CloudFormation intrinsic functions in a SAM template, for what Nimbus deploys:
 * Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split, Fn::If with the template's
 * Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), Fn::FindInMap and
 * Fn::Base64, plus the pseudo parameters (AWS::Region, AWS::AccountId, AWS::StackName,
 * AWS::Partition, AWS::URLSuffix, AWS::NoValue). What cannot be resolved locally is an
 * error that names where it is.
 */
import { TemplateError } from './template.ts';

export interface ResolveContext {
  region: string;
  accountId: string;
  stackName: string;
  parameters: Record<string, unknown>;
  mappings: Record<string, Record<string, Record<string, unknown>>>;
  conditions: Record<string, unknown>;
  /** Ref of a resource Nimbus deploys: its physical name (function name, API id). */
  refs: Record<string, string>;
  /** Fn::GetAtt of a resource Nimbus deploys: `Logical.Attribute` -> value. */
  attributes: Record<string, string>;
  /** Resources Nimbus skips, by logical id -> type (Ref to them gives the logical id, noted). */
  skipped: Record<string, string>;
  /** Called when a value had to stand in for a resource Nimbus does not deploy. */
  note: (message: string) => void;
}

/** AWS::NoValue removes the property it is the value of. */
export const NoValue = Symbol('AWS::NoValue');

function pseudo(name: string, ctx: ResolveContext): string | typeof NoValue | undefined {
  switch (name) {
    case 'AWS::Region': return ctx.region;
    case 'AWS::AccountId': return ctx.accountId;
    case 'AWS::StackName': return ctx.stackName;
    case 'AWS::StackId': return `arn:aws:cloudformation:${ctx.region}:${ctx.accountId}:stack/${ctx.stackName}/nimbus`;
    case 'AWS::Partition': return 'aws';
    case 'AWS::URLSuffix': return 'amazonaws.com';
    case 'AWS::NoValue': return NoValue;
    default: return undefined;
  }
}

export class Resolver {
  readonly #ctx: ResolveContext;
  readonly #conditionCache = new Map<string, boolean>();

  constructor(ctx: ResolveContext) {
    this.#ctx = ctx;
  }

  /** Resolves every intrinsic inside `value`; `where` names the place for error messages. */
  resolve(value: unknown, where: string): unknown {
    if (Array.isArray(value)) return value.map((v, i) => this.resolve(v, `${where}[${i}]`)).filter((v) => v !== NoValue);
    if (typeof value !== 'object' || value === null) return value;
    const entries = Object.entries(value);
    if (entries.length === 1) {
      const [key, arg] = entries[0]!;
      if (key === 'Ref' || key === 'Condition' || key.startsWith('Fn::')) return this.#intrinsic(key, arg, where);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const resolved = this.resolve(v, `${where}.${k}`);
      if (resolved !== NoValue) out[k] = resolved;
    }
    return out;
  }

  /** A value that must come out as a string. */
  string(value: unknown, where: string): string {
    const v = this.resolve(value, where);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') throw new TemplateError(`${where} must be a string, got ${JSON.stringify(v)}.`);
    return v;
  }

  condition(name: string, where: string): boolean {
    const cached = this.#conditionCache.get(name);
    if (cached !== undefined) return cached;
    if (!(name in this.#ctx.conditions)) throw new TemplateError(`${where}: condition ${name} is not in the template's Conditions.`);
    const v = this.resolve(this.#ctx.conditions[name], `Conditions.${name}`);
    if (typeof v !== 'boolean') throw new TemplateError(`Conditions.${name} must be a condition function.`);
    this.#conditionCache.set(name, v);
    return v;
  }

  #intrinsic(key: string, arg: unknown, where: string): unknown {
    const here = `${where} (${key})`;
    switch (key) {
      case 'Ref':
        return this.#ref(String(arg), here);
      case 'Condition':
        return this.condition(String(arg), here);
      case 'Fn::GetAtt': {
        const parts = Array.isArray(arg) ? arg.map((p) => this.string(p, here)) : String(arg).split('.');
        return this.#getAtt(parts[0]!, parts.slice(1).join('.'), here);
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? [arg[0], (arg[1] ?? {}) as Record<string, unknown>] : [arg, {}];
        if (typeof text !== 'string') throw new TemplateError(`${here}: the string to substitute must be a string.`);
        const locals = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, this.string(v, `${here}.${k}`)]));
        // ${!Literal} writes ${Literal} (CloudFormation's escape).
        return text.replace(/\$\{(!?)([^}]+)\}/g, (_all, bang: string, name: string) => {
          if (bang) return '${' + name + '}';
          if (name in locals) return locals[name]!;
          const dot = name.indexOf('.');
          if (dot > 0 && !name.startsWith('AWS::')) return this.#getAtt(name.slice(0, dot), name.slice(dot + 1), here);
          const v = this.#ref(name, here);
          if (v === NoValue || typeof v === 'object') throw new TemplateError(`${here}: \${${name}} is not a string.`);
          return String(v);
        });
      }
      case 'Fn::Join': {
        if (!Array.isArray(arg) || arg.length !== 2) throw new TemplateError(`${here}: takes [delimiter, [values]].`);
        const list = this.resolve(arg[1], here);
        if (!Array.isArray(list)) throw new TemplateError(`${here}: the values must be a list.`);
        return list.map((v) => String(v)).join(this.string(arg[0], here));
      }
      case 'Fn::Select': {
        if (!Array.isArray(arg) || arg.length !== 2) throw new TemplateError(`${here}: takes [index, [values]].`);
        const index = Number(this.resolve(arg[0], here));
        const list = this.resolve(arg[1], here);
        if (!Array.isArray(list) || !Number.isInteger(index) || index < 0 || index >= list.length) throw new TemplateError(`${here}: index out of range.`);
        return list[index];
      }
      case 'Fn::Split': {
        if (!Array.isArray(arg) || arg.length !== 2) throw new TemplateError(`${here}: takes [delimiter, string].`);
        return this.string(arg[1], here).split(this.string(arg[0], here));
      }
      case 'Fn::If': {
        if (!Array.isArray(arg) || arg.length !== 3) throw new TemplateError(`${here}: takes [condition, then, else].`);
        return this.resolve(this.condition(String(arg[0]), here) ? arg[1] : arg[2], here);
      }
      case 'Fn::Equals': {
        if (!Array.isArray(arg) || arg.length !== 2) throw new TemplateError(`${here}: takes [a, b].`);
        return String(this.resolve(arg[0], here)) === String(this.resolve(arg[1], here));
      }
      case 'Fn::Not': {
        const [c] = Array.isArray(arg) ? arg : [arg];
        return !this.#bool(c, here);
      }
      case 'Fn::And':
        return (arg as unknown[]).every((c) => this.#bool(c, here));
      case 'Fn::Or':
        return (arg as unknown[]).some((c) => this.#bool(c, here));
      case 'Fn::FindInMap': {
        if (!Array.isArray(arg) || arg.length < 3) throw new TemplateError(`${here}: takes [map, top key, second key].`);
        const [m, k1, k2] = arg.slice(0, 3).map((p) => this.string(p, here)) as [string, string, string];
        const found = this.#ctx.mappings[m]?.[k1]?.[k2];
        if (found === undefined) throw new TemplateError(`${here}: Mappings.${m}.${k1}.${k2} is not in the template.`);
        return found;
      }
      case 'Fn::Base64':
        return Buffer.from(this.string(arg, here), 'utf8').toString('base64');
      default:
        throw new TemplateError(`${here}: ${key} cannot be resolved by Nimbus.`);
    }
  }

  #bool(value: unknown, where: string): boolean {
    const v = this.resolve(value, where);
    if (typeof v !== 'boolean') throw new TemplateError(`${where}: expected a condition.`);
    return v;
  }

  #ref(name: string, where: string): unknown {
    const p = pseudo(name, this.#ctx);
    if (p !== undefined) return p;
    if (name in this.#ctx.parameters) return this.#ctx.parameters[name];
    if (name in this.#ctx.refs) return this.#ctx.refs[name];
    const skippedType = this.#ctx.skipped[name];
    if (skippedType !== undefined) {
      this.#ctx.note(`${where}: ${name} is an ${skippedType}, which Nimbus does not deploy; Ref gives its logical id "${name}".`);
      return name;
    }
    throw new TemplateError(`${where}: ${name} is neither a parameter nor a resource of the template.`);
  }

  #getAtt(resource: string, attribute: string, where: string): string {
    const v = this.#ctx.attributes[`${resource}.${attribute}`];
    if (v !== undefined) return v;
    const skippedType = this.#ctx.skipped[resource];
    if (skippedType !== undefined) throw new TemplateError(`${where}: ${resource}.${attribute} cannot be resolved: ${resource} is an ${skippedType}, which Nimbus does not deploy.`);
    throw new TemplateError(`${where}: ${resource}.${attribute} is not an attribute Nimbus knows.`);
  }
}
