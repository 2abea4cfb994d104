import { z } from "zod";

export const uuidParam = z.uuid();
export const ROLES = ["owner", "admin", "member", "viewer"] as const;
export const roleSchema = z.enum(ROLES);

/** Query of every keyset-paginated list. */
export const pageQuerySchema = z.object({
  cursor: z.string().max(512).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

/** `{ items, nextCursor }`: the shape of every list response. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export const emailSchema = z.email().max(254);
export const nameSchema = z.string().trim().min(1).max(100);
