-- Uploads cost storage within a quota: a rejected upload keeps its report and only its first
-- 64 KiB (enough to see what was sent), and what is stored is never more than what was uploaded.
UPDATE feed_versions SET content = substring(content FROM 1 FOR 65536)
WHERE status = 'rejected' AND octet_length(content) > 65536;
ALTER TABLE feed_versions
    ADD CONSTRAINT feed_versions_rejected_keeps_head CHECK (status <> 'rejected' OR octet_length(content) <= 65536),
    ADD CONSTRAINT feed_versions_content_within_size CHECK (size_bytes >= 0 AND octet_length(content) <= size_bytes);
