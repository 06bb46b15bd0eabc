-- Each send leaves two old row versions of its message (the claim's and the outcome's update), and
-- the claim reads the due index past them until a vacuum reclaims them: on a server with autovacuum
-- off, a 1,000,000-member send here fell from about 980 to 573 msgs/s by its 870,000th message, and
-- went to 2,127 msgs/s after a 5 s VACUUM of messages. Autovacuum's default trigger is 20 % of the
-- table dead: on a table holding 50,000,000 past messages, 5,000,000 sends. Here: 2 % plus 50,000.
ALTER TABLE messages SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 50000);
