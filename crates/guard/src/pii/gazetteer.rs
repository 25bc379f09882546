//! Word lists for the context-driven recognizers (names, places, titles).
//!
//! Hand-made, English and German first, with common French, Spanish, Italian
//! and Turkish first names seen in German customer data. No model download.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

/// FNV-1a: the gazetteer keys are short words, looked up once per capitalised
/// word of every text; SipHash's DoS resistance buys nothing for a fixed list.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

const FIRST_NAMES: &str = "
Aaron Abdul Adam Adrian Ahmed Alan Albert Alexander Alexandra Alfred Ali Alice Alina Amelie Amy
Andrea Andreas Andrew Angela Angelika Anja Anke Anna Anne Annette Anton Antonia Arne Astrid Axel
Barbara Bastian Ben Benedikt Benjamin Bernd Bernhard Bettina Bianca Birgit Björn Bodo Brian Brigitte
Bruno Carl Carla Carmen Carola Caroline Carsten Catherine Charles Charlotte Chris Christa Christian
Christiane Christina Christine Christoph Christopher Clara Claudia Claus Cornelia Daniel Daniela
Daniele David Dennis Detlef Diana Dieter Dietmar Dirk Dominik Doris Dorothea Edith Elena Elias Elif
Elisabeth Elke Ella Emil Emily Emilia Emma Eric Erik Erika Ernst Eva Fabian Felix Finn Florian Frank
Franz Franziska Frederik Friedrich Frieda Gabriele Georg George Gerd Gerhard Gisela Giulia Giuseppe
Greta Gregor Gudrun Günter Günther Hannah Hanna Hannelore Hans Harald Heike Heinz Heinrich Helga
Helmut Hendrik Henning Henry Herbert Hermann Hilde Holger Horst Hubert Ida Ilse Ines Inge Ingrid Irene
Iris Isabel Isabella Jakob Jan James Jana Jane Janina Jannik Jason Jennifer Jens Jessica Joachim
Johann Johanna Johannes John Jonas Jonathan Jörg Joseph Josef Julia Julian Juliane Jürgen Justin Karin
Karl Karsten Katharina Kathrin Katja Kerstin Kevin Kim Klaus Konrad Kristina Lara Larissa Laura Lea
Lena Leon Leonie Lina Linda Lisa Lorenz Lotte Louis Luca Lucas Lucia Ludwig Luis Luisa Lukas Lutz
Maik Manfred Manuel Manuela Marc Marcel Marco Margarete Maria Marie Marina Mario Marion Mark Markus
Marlene Martha Martin Martina Mary Mathias Matthias Max Maximilian Mehmet Melanie Merle Mia Michael
Michaela Michelle Mila Mirko Monika Moritz Mustafa Nadine Natalie Nico Nicole Niklas Nils Nina Noah
Norbert Olaf Olga Oliver Olivia Oskar Otto Pascal Patricia Patrick Paul Paula Peter Petra Philipp
Pia Rainer Ralf Ralph Rebecca Regina Reinhard Renate Rene René Richard Robert Robin Roland Rolf Rosa
Rudolf Ruth Sabine Sabrina Sandra Sara Sarah Sascha Sebastian Selina Simon Simone Sofia Sonja Sophia
Sophie Stefan Stefanie Steffen Stephan Stephanie Susanne Sven Svenja Swen Tanja Theo Thomas Thorsten
Tim Timo Tobias Tom Torsten Ulrich Ulrike Ursula Uta Ute Uwe Valentin Vanessa Vera Viktor Volker
Walter Werner Wilhelm William Wolfgang Yannick Yvonne Zoe Ayse Fatma Emine Hatice Yusuf Murat
Pierre Jean Jacques Marcel Sophie Camille Chloé Manon Hugo Louise Antoine Nicolas Juan Carlos Javier
Miguel José Lucía Carmen Sofía Alejandro Pablo Marco Francesco Alessandro Matteo Chiara Giorgia
Elizabeth Margaret Patricia Susan Linda Karen Nancy Betty Helen Sandra Donna Ruth Sharon Michelle
Laura Kimberly Deborah Amanda Melissa Stephanie Rebecca Emma Olivia Ava Isabella Mia Charlotte
Amelia Harper Evelyn Abigail Ella Scarlett Grace Chloe Victoria Riley Aria Lily Aubrey Zoey Penelope
Robert Michael William Richard Joseph Thomas Charles Daniel Matthew Anthony Donald Steven Paul Joshua
Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Stephen
Jonathan Larry Justin Scott Brandon Benjamin Samuel Gregory Frank Alexander Raymond Patrick Jack
Dennis Jerry Tyler Aaron Jose Henry Adam Douglas Nathan Peter Zachary Kyle Walter Harold Jeremy Ethan
Carl Keith Roger Gerald Christian Terry Sean Arthur Austin Noah Lawrence Jesse Joe Bryan Billy Jordan
Albert Dylan Bruce Willie Gabriel Alan Juan Logan Wayne Ralph Roy Eugene Randy Vincent Russell Louis
Philip Bobby Johnny Bradley Emily Madison Hannah Ashley Sarah Jessica Megan Rachel Lauren Heather
";

const SURNAMES: &str = "
Müller Schmidt Schneider Fischer Weber Meyer Meier Wagner Becker Schulz Hoffmann Schäfer Koch Bauer
Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt
Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann König Walter Mayer Huber
Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert Vogel Friedrich Keller Günther Frank
Berger Winkler Roth Beck Lorenz Baumann Franke Albrecht Schuster Simon Ludwig Böhm Winter Kraus Martin
Schumacher Krämer Vogt Stein Jäger Otto Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf
Dietrich Ziegler Kuhn Kühn Pohl Engel Horn Busch Bergmann Thomas Voigt Sauer Arnold Wolff Pfeiffer
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Taylor Moore Jackson Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Yilmaz Kaya Demir Şahin Çelik Öztürk Rossi Russo Ferrari
Esposito Bianchi Romano Colombo Ricci Dubois Durand Lefebvre Moreau Laurent Bernard Petit Fernández
";

const CITIES: &str = "
Berlin Hamburg München Munich Köln Cologne Frankfurt Stuttgart Düsseldorf Leipzig Dortmund Essen
Bremen Dresden Hannover Nürnberg Duisburg Bochum Wuppertal Bielefeld Bonn Münster Mannheim Karlsruhe
Augsburg Wiesbaden Mönchengladbach Gelsenkirchen Aachen Braunschweig Kiel Chemnitz Halle Magdeburg
Freiburg Krefeld Mainz Lübeck Erfurt Oberhausen Rostock Kassel Hagen Potsdam Saarbrücken Hamm
Ludwigshafen Oldenburg Osnabrück Leverkusen Heidelberg Darmstadt Solingen Regensburg Paderborn
Ingolstadt Würzburg Ulm Wolfsburg Göttingen Heilbronn Pforzheim Offenbach Bottrop Trier Jena Wien
Vienna Graz Linz Salzburg Innsbruck Zürich Zurich Basel Bern Genf Geneva Lausanne London Manchester
Birmingham Liverpool Leeds Glasgow Edinburgh Bristol Dublin Paris Lyon Marseille Toulouse Nice
Madrid Barcelona Valencia Sevilla Seville Rome Rom Milan Mailand Naples Neapel Turin Florence Florenz
Amsterdam Rotterdam Brussels Brüssel Antwerp Copenhagen Kopenhagen Stockholm Oslo Helsinki Warsaw
Warschau Prague Prag Budapest Lisbon Lissabon Athens Athen Istanbul Chicago Houston Phoenix
Philadelphia Dallas Austin Boston Seattle Denver Atlanta Miami Toronto Vancouver Sydney Melbourne
";

const TITLES: &str = "
Herr Herrn Frau Mr Mrs Ms Miss Dr Prof Mme Monsieur Madame Señor Señora Sr Sra Signor Signora Sig
";

/// A first name.
pub const FIRST: u8 = 1;
/// A family name.
pub const LAST: u8 = 2;
/// A city.
pub const CITY: u8 = 4;
/// A form of address.
pub const TITLE: u8 = 8;

/// What a capitalised word is, as a bit set of [`FIRST`], [`LAST`], [`CITY`],
/// [`TITLE`] (0 for none): one lookup per word instead of one per list.
pub fn kinds(word: &str) -> u8 {
    static M: OnceLock<HashMap<&'static str, u8, BuildHasherDefault<Fnv>>> = OnceLock::new();
    let m = M.get_or_init(|| {
        let mut m = HashMap::default();
        for (list, flag) in [
            (FIRST_NAMES, FIRST),
            (SURNAMES, LAST),
            (CITIES, CITY),
            (TITLES, TITLE),
        ] {
            for w in list.split_whitespace() {
                *m.entry(w).or_insert(0) |= flag;
            }
        }
        m
    });
    m.get(word).copied().unwrap_or(0)
}
