import { type AccountState, createJwtAuth } from "../../src/http/auth.ts";
import type { AuthUser } from "../../src/http/env.ts";

/**
 * testAuth is a token issuer and verifier for apps composed without the users module: the
 * accounts it issues tokens for are the only ones that exist (an in-memory directory standing in
 * for `users.accounts`, which those tests do not have).
 */
export function testAuth(secret = "x".repeat(40), ttlSeconds = 600) {
  const accounts = new Map<string, AccountState>();
  const auth = createJwtAuth(secret, ttlSeconds, { accounts: async (id) => accounts.get(id) });
  return {
    ...auth,
    accounts,
    issue(user: AuthUser) {
      accounts.set(user.id, { role: user.role, username: user.username, tokenVersion: 0, disabled: false });
      return auth.issue({ ...user, tokenVersion: 0 });
    },
  };
}
