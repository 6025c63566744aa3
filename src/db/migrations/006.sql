-- The per-client limit on パスワード再発行 mails counts by client address: without an
-- index every request read the whole table, which every request (limited or not) grows.
CREATE INDEX reset_requests_ip ON reset_requests (client_ip, outcome, requested_at);
