-- Opt-outs that start at the engine (one-click, the unsubscribe page, a complaint, our API) are
-- final: no full sync and no event undoes them, except a subscription.activated event whose
-- occurred_at is later than the opt-out. Owned by src/lists/ (src/lists/opt-out.ts).

-- The standing opt-out of a membership. Set when an engine opt-out moves an active member to
-- unsubscribed; cleared only by the re-activation that wins over it. opt_out_source mirrors
-- OPT_OUT_SOURCES in src/lists/opt-out.ts.
ALTER TABLE list_members
  ADD COLUMN opted_out_at timestamptz,
  ADD COLUMN opt_out_source text CHECK (opt_out_source IN ('one_click', 'link', 'complaint', 'api')),
  ADD CONSTRAINT list_members_opt_out_complete CHECK ((opted_out_at IS NULL) = (opt_out_source IS NULL));

-- A complaint opts an address out of every list of its tenant: address -> subscribers -> memberships.
CREATE INDEX subscribers_email ON subscribers (tenant_id, lower(email));
CREATE INDEX list_members_subscriber ON list_members (tenant_id, subscriber_id);

-- Members a sync listed as active but who stay unsubscribed because of an engine opt-out.
ALTER TABLE list_syncs ADD COLUMN kept_unsubscribed integer NOT NULL DEFAULT 0;

-- Whether a write ends a standing opt-out: a subscription.activated (the person subscribed
-- again at the Member Center) later than it. It ends it even when a still newer status keeps
-- the activation from becoming the status, so whether an opt-out stands does not depend on the
-- order writes arrive in.
CREATE FUNCTION list_opt_out_ends(new_status text, new_at timestamptz, new_reason text, opted_out_at timestamptz)
  RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT new_reason = 'subscription.activated' AND new_status = 'active' AND new_at > opted_out_at $$;

-- Whether a membership status write replaces the stored one. The newer (status_at, rank) wins
-- (list_status_rank breaks ties); on top of that, a standing opt-out turns back to active only
-- through a write that ends it: never through a full sync or a preferences.updated that
-- restates the member as active. Both functions are inlined by the planner.
CREATE FUNCTION list_status_wins(new_status text, new_at timestamptz, new_reason text,
                                 old_status text, old_at timestamptz, opted_out_at timestamptz)
  RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$
    SELECT (new_at, list_status_rank(new_status)) > (old_at, list_status_rank(old_status))
       AND (opted_out_at IS NULL OR new_status <> 'active' OR list_opt_out_ends(new_status, new_at, new_reason, opted_out_at))
  $$;
