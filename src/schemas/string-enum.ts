import { Type, type TSchema, type TUnsafe } from 'typebox';

/**
 * A string enum as plain JSON Schema (`{type: "string", enum: [...]}`), which reads better in
 * OpenAPI and in validation messages than TypeBox's union of literals.
 */
export function StringEnum<const T extends readonly string[]>(values: T, options: Omit<Partial<TSchema>, 'type' | 'enum'> & Record<string, unknown> = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}
