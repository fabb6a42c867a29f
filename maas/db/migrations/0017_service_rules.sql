-- The service definition: each row of service_areas is one version of it (the table keeps its first
-- name, which maas_book reads): the area, and now the rules (hours, booking rules, ride times,
-- connections), as JSON that maas.model.ServiceRules decodes. '{}' means every rule at its default.
ALTER TABLE service_areas ADD COLUMN rules jsonb NOT NULL DEFAULT '{}'::jsonb;
