import { type Appender, type Db, defineModule, type TokenIssuer } from "../../src/platform.ts";
import { ensureAdmin } from "./commands.ts";
import { userEvents } from "./events.ts";
import { countPosts } from "./handlers.ts";
import { getPreferences, getProfile } from "./profile.ts";
import { profileRoutes } from "./profile-routes.ts";
import {
  findAccounts,
  findNotificationTargets,
  findPostSubscribers,
  getAccount,
  listAdminIds,
  type NotificationTarget,
  type PostSubscriber,
} from "./queries.ts";
import { usersRoutes } from "./routes.ts";
import { sessionRoutes } from "./session-routes.ts";
import { type SessionState, sessionState } from "./sessions.ts";
import type { Account, Preferences, Profile } from "./views.ts";

export type { NotificationTarget, PostSubscriber } from "./queries.ts";
export type { SessionState } from "./sessions.ts";
export type { Account, Preferences, Profile } from "./views.ts";

/** UsersApi is the read API other modules may call synchronously. */
export interface UsersApi {
  /** getAccount returns one account, or throws a 404 `USERS.NOT_FOUND`. */
  getAccount(id: string): Promise<Account>;
  /** findAccounts returns the accounts with these ids; unknown ids are left out. */
  findAccounts(ids: string[]): Promise<Account[]>;
  /** getProfile returns one public profile, or throws a 404 `USERS.NOT_FOUND`. */
  getProfile(id: string): Promise<Profile>;
  /** getPreferences returns one user's notification preferences, or throws a 404 `USERS.NOT_FOUND`. */
  getPreferences(id: string): Promise<Preferences>;
  /** findNotificationTargets returns the email and notification preferences of the users among `ids` (one query); unknown ids are left out. */
  findNotificationTargets(ids: string[]): Promise<NotificationTarget[]>;
  /**
   * findPostSubscribers returns each author's followers whose postNotifications is on (one query
   * for all authors), leaving out the authors with more than `maxFollowers` followers.
   */
  findPostSubscribers(authorIds: string[], maxFollowers?: number): Promise<PostSubscriber[]>;
  /** listAdminIds returns the ids of every admin account. */
  listAdminIds(): Promise<string[]>;
  /** sessionState returns what a bearer token's check needs of an account, or undefined when it does not exist. */
  sessionState(id: string): Promise<SessionState | undefined>;
}

/** UsersModuleDeps are the users module's dependencies, given by the composition root. */
export interface UsersModuleDeps {
  db: Db;
  outbox: Appender;
  tokens: TokenIssuer;
  admin: { username: string; email: string; password: string };
}

/**
 * createUsersModule builds the users module: accounts, tokens, profiles, follows, notification
 * preferences, and the admin bootstrap. It counts each user's posts from the posts module's events.
 *
 * @example const users = createUsersModule({ db, outbox, tokens, admin: { username: "admin", email, password } });
 */
export function createUsersModule(deps: UsersModuleDeps) {
  const api: UsersApi = {
    getAccount: (id) => getAccount(deps.db, id),
    findAccounts: (ids) => findAccounts(deps.db, ids),
    getProfile: (id) => getProfile(deps.db, id),
    getPreferences: (id) => getPreferences(deps.db, id),
    findNotificationTargets: (ids) => findNotificationTargets(deps.db, ids),
    findPostSubscribers: (ids, maxFollowers) => findPostSubscribers(deps.db, ids, maxFollowers),
    listAdminIds: () => listAdminIds(deps.db),
    sessionState: (id) => sessionState(deps.db, id),
  };
  return defineModule<UsersApi>({
    name: "users",
    events: userEvents,
    api,
    routes: (router) => {
      usersRoutes(router, deps);
      profileRoutes(router, deps);
      sessionRoutes(router, deps);
    },
    subscriptions: [countPosts],
    start: () => ensureAdmin(deps, deps.admin),
  });
}
