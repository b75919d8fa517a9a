-- One database per service (each migrates its own tables, the platform's outbox and inbox among
-- them), owned by the one dev user.
CREATE DATABASE catalog OWNER shopstream;
CREATE DATABASE commerce OWNER shopstream;
CREATE DATABASE ads OWNER shopstream;
CREATE DATABASE creator_score OWNER shopstream;
