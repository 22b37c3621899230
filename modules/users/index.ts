import { type Appender, type Db, defineModule, type TokenIssuer } from "../../src/platform.ts";
import type { Account } from "./account.ts";
import { ensureAdmin } from "./commands.ts";
import { userEvents } from "./events.ts";
import { findAccounts, getAccount } from "./queries.ts";
import { usersRoutes } from "./routes.ts";

export type { Account } from "./account.ts";

/** UsersApi is the read API other modules may call synchronously. */
export interface UsersApi {
  getAccount(id: string): Promise<Account>;
  findAccounts(ids: string[]): Promise<Account[]>;
}

/** UsersModuleDeps are the users module's dependencies, given by the composition root. */
export interface UsersModuleDeps {
  db: Db;
  outbox: Appender;
  tokens: TokenIssuer;
  admin: { username: string; email: string; password: string };
}

/**
 * createUsersModule builds the users module: accounts, tokens, and the admin bootstrap.
 *
 * @example const users = createUsersModule({ db, outbox, tokens, admin: { username: "admin", email, password } });
 */
export function createUsersModule(deps: UsersModuleDeps) {
  const api: UsersApi = {
    getAccount: (id) => getAccount(deps.db, id),
    findAccounts: (ids) => findAccounts(deps.db, ids),
  };
  return defineModule<UsersApi>({
    name: "users",
    events: userEvents,
    api,
    routes: (router) => usersRoutes(router, deps),
    start: () => ensureAdmin(deps, deps.admin),
  });
}
