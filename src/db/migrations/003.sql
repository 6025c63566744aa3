-- Version 2 → 3: rate-limit lookups by outcome too (a flood of refused requests from
-- one address must not make every later lookup slower).
DROP INDEX signup_requests_address;
DROP INDEX signup_requests_ip;
CREATE INDEX signup_requests_address ON signup_requests (address_key, outcome, requested_at);
CREATE INDEX signup_requests_ip ON signup_requests (client_ip, outcome, requested_at);
