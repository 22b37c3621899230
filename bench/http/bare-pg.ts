/**
 * Reference server for bench/http.ts: Bun.serve and postgres.js, no framework, reading the
 * account row `$ACCOUNT_ID` by primary key on `GET /api/v1/users/me` and answering it in the
 * shape the app answers. What a signed-in read costs at the speed of the driver. Listens on
 * 127.0.0.1:$PORT with a pool of $DATABASE_POOL_MAX connections (the app's default, 10).
 */
import postgres from "postgres";

const sql = postgres(process.env.DATABASE_URL!, { max: Number(process.env.DATABASE_POOL_MAX ?? 10), onnotice: () => {} });
const id = process.env.ACCOUNT_ID!;

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT),
  async fetch(req) {
    if (new URL(req.url).pathname !== "/api/v1/users/me") return new Response("not found", { status: 404 });
    const [r] = await sql`select id, username, email, display_name, role, created_at from users.accounts where id = ${id}`;
    if (!r) return new Response("not found", { status: 404 });
    const body = { id: r.id, username: r.username, email: r.email, displayName: r.display_name, role: r.role, createdAt: new Date(r.created_at).toISOString() };
    return Response.json(body);
  },
});
